// placeholder so the area library is never empty
namespace vstorage { [[maybe_unused]] static int kPlaceholder_mds = 0; }

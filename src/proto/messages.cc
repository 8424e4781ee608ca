#include "proto/messages.h"

// The messages are header-only; this unit compiles the header on its own so a header that
// does not stand alone fails here first.

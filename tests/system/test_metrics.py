"""Prometheus metrics (issue 14 item 8, src/mds/metrics.h): the MDS serves the text format at
/metrics, and Debian's real Prometheus scrapes it: the cluster's status, its CS and the
chunk counts come through as what `vstorage stat` says."""
import json
import os
import re
import subprocess
import urllib.parse
import urllib.request

from conftest import free_port_pair, wait_for, write_file


def get(url):
    with urllib.request.urlopen(url, timeout=5) as r:
        return r.status, r.headers.get("Content-Type", ""), r.read().decode()


def test_prometheus_scrapes_the_cluster_from_the_mds(cluster):
    ids, m, h = cluster.start(3, replicas=3, chunk_size="1M")
    write_file(os.path.join(m, "f"), os.urandom(3 << 20))
    # The metrics on a port of their own (mds.conf metrics=HOST:PORT), then an MDS restart.
    port = free_port_pair()
    conf = os.path.join(cluster.root, "mds", "mds.conf")
    with open(conf, "a") as f:
        f.write(f"metrics=127.0.0.1:{port}\n")
    cluster.restart("mds")
    cluster.wait_mds()
    cluster.wait_cs_active(3)
    url = f"http://127.0.0.1:{port}/metrics"

    def served():
        status, ctype, text = get(url)
        return status == 200 and "version=0.0.4" in ctype and \
            f'vstorage_cluster_status{{cluster="{cluster.name}",status="healthy"}} 1' in text and text
    text = wait_for(served, timeout=60, what="the MDS metrics saying healthy")
    for i in ids:
        assert re.search(r'vstorage_cs_status\{cs="%d",host="[^"]*",status="active"\} 1\n' % i, text), text
    assert 'vstorage_chunks_by_state{cluster="%s",state="healthy"} 3' % cluster.name in text

    # A real Prometheus scrapes it every second.
    web = free_port_pair()
    d = os.path.join(cluster.root, "prometheus")
    os.makedirs(d)
    with open(os.path.join(d, "prometheus.yml"), "w") as f:
        f.write("global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: vstorage\n"
                f"    static_configs:\n      - targets: ['127.0.0.1:{port}']\n")
    log = open(os.path.join(d, "log"), "w")
    p = subprocess.Popen(["prometheus", f"--config.file={d}/prometheus.yml", f"--storage.tsdb.path={d}/data",
                          f"--web.listen-address=127.0.0.1:{web}"], stdout=log, stderr=log)
    try:
        def query(q):
            assert p.poll() is None, open(log.name).read()[-2000:]
            try:
                _, _, body = get(f"http://127.0.0.1:{web}/api/v1/query?" + urllib.parse.urlencode({"query": q}))
            except OSError:
                return None
            res = json.loads(body)["data"]["result"]
            return res or None
        up = wait_for(lambda: query('up{job="vstorage"} == 1'), timeout=90, what="Prometheus scraping the MDS")
        assert up[0]["metric"]["instance"] == f"127.0.0.1:{port}"
        healthy = wait_for(lambda: query('vstorage_cluster_status{status="healthy"} == 1'), timeout=30,
                           what="the cluster status in Prometheus")
        assert healthy[0]["metric"]["cluster"] == cluster.name
        active = wait_for(lambda: query('count(vstorage_cs_status{status="active"})'), timeout=30,
                          what="the CS in Prometheus")
        assert active[0]["value"][1] == "3"
        written = wait_for(lambda: query('vstorage_chunks_by_state{state="healthy"} >= 3'), timeout=30,
                           what="the chunks in Prometheus")
        assert int(written[0]["value"][1]) >= 3
    finally:
        p.terminate()
        p.wait(timeout=30)

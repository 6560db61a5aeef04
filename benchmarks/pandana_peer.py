#!/usr/bin/env python3
"""pandana's nearest points of interest on a directed network: the peer of `urbantwin bench access`.

For every node of a network and every category of points of interest (POIs), the network distances to the nearest
``--k`` POIs of that category within ``--max-cost``: pandana's ``Network.set_pois`` / ``Network.nearest_pois``
(contraction hierarchy plus one POI bucket index per category), and ONE JSON line on stdout. Everything else goes to
stderr, including what pandana's C++ code prints on file descriptor 1 ("Generating contraction hierarchies with N
threads", "Range graph removed ..."): fd 1 is pointed at stderr for the whole run and the JSON line is written to a
duplicate of the original stdout.

Input, written by urbantwin into ``--dir DIR``:

- ``nodes.csv``: ``id,x,y``, ids 0..n-1 in order, x longitude and y latitude (WGS84 degrees);
- ``edges.csv``: ``from,to,weight``, DIRECTED edges (a two-way street is listed once in each direction), weight the
  travel cost (> 0; seconds); handed to ``pandana.Network(..., twoway=False)``, which keeps every edge one-way;
- ``pois.csv``: ``category,node,x,y``, each POI exactly on a network node (x, y that node's coordinates).

Same problem as urbantwin's: pandana maps POIs to nodes by coordinates (nearest node of a KD-tree, no snapping
cost), so before anything is timed the script checks that ``Network.get_node_ids`` on the POI coordinates gives back
exactly the ``node`` column, and fails with a message if it does not (e.g. when distinct nodes share coordinates:
pandana cannot tell them apart). A POI on the source node itself is found at distance 0, several POIs on one node
each count (node with two POIs of a category: two entries at the same distance), and a POI counts when its distance
is <= ``--max-cost`` (inclusive, after the rounding below). Only distances are compared (not which POI), so ties
do not matter.

What is timed:

- ``preprocess_seconds``: ``pandana.Network(...)``: the C++ contraction hierarchy (node ordering, contraction,
  clean-up, query graph) for the one impedance, plus the small extras of that constructor (the id -> index pandas
  merge of the edge ends and a scikit-learn KD-tree of the node coordinates; the KD-tree alone, rebuilt
  separately after the run and not counted twice, is reported as ``kdtree_seconds``);
- ``query_seconds``: for each category in the order of first appearance in pois.csv, ``set_pois(category=...,
  maxdist=max_cost, maxitems=k, x_col=..., y_col=...)`` (KD-tree mapping of the POIs to nodes, then the category's
  bucket index: one backward CH search from every POI) and ``nearest_pois(distance=max_cost, category=...,
  num_pois=k, max_distance=inf)`` (one forward CH search per node, OpenMP-parallel over nodes, and the pandas
  DataFrame of the result); ``per_category_seconds`` splits it by category;
- ``total_seconds`` = preprocess + query.

Not timed: reading the CSVs (``read_seconds``; pandas' parser gives the float64 nearest to each decimal, as
Rust's ``str::parse`` does), the checks of the input and of the POI mapping, the reindexing of
each result to node ids 0..n-1 and the writing of ``--out``.

Precision (pandana 0.8, read from its C++ source and checked by test). pandana's CH works in INTEGER units of
1/1000 of the weight: each edge weight becomes ``(unsigned)(weight * 1000.0)``, truncated toward zero (a weight of
12.3456 s counts 12.345 s; a weight under 0.001 becomes 0.001), path lengths are exact sums of those integers, and a
distance comes back as ``(float)sum / 1000.0f``, a FLOAT32 (stored in a ``std::map<int, float>``, widened to
float64 in the returned numpy array). So:

- with weights that are multiples of 1/8 second (whole seconds in particular: then ``weight * 1000`` is exact), a
  returned distance is the exact shortest distance rounded to float32: relative error <= 2^-24 (6e-8), well inside
  a 1e-6 relative comparison, but NOT bit-equal to a float64 sum;
- with arbitrary float weights every edge loses up to 0.001 of its weight, so pandana's distance is SHORTER than
  the float64 one by up to 0.001 * (edges on the path) (about 0.1 s on a 100-edge path: 6e-5 relative on 1800 s):
  a 1e-6 relative comparison then fails, and which POIs lie inside ``max_cost`` can differ at the boundary;
  ``weights_truncated`` in the JSON counts the edges whose ``weight * 1000`` was not a whole number;
- the radius too is truncated to milli-units: ``(unsigned)(max_cost * 1000.0)``; distances are unsigned 32-bit
  integers inside, so ``max_cost`` must stay below 4294967 (about 49.7 days in seconds).

POIs not found (fewer than k within ``max_cost``): pandana returns -1 from C++ and ``nearest_pois`` replaces it by
``max_distance`` (default: ``distance``, i.e. max_cost, which a POI at exactly max_cost would also show); this
script passes ``max_distance=inf``, so "not found" is +inf and cannot be confused with a POI at max_cost.

Output with ``--out DIR2``: per category ``DIR2/<category>.f64``, raw little-endian float64, shape (n, k)
row-major, row i = node id i, columns nearest first, +inf where fewer than k POIs are within max_cost; and
``DIR2/meta.json`` with n, k, categories (in file order), max_cost.

Measured here (2 cores, OMP_NUM_THREADS unset, 90,000-node jittered grid, 358,800 directed edges of 5-60 s, 10
categories x 200 POIs, k 3, max_cost 1800 s): preprocess 92 s, query 81 s (about 8 s per category), peak RSS
0.44 GB; every one of the 2.7 million distances equal, bit for bit, to the milli-unit float32 model above
(scipy Dijkstra on the truncated integer weights), and within 1.9e-4 relative of the float64 distances. A grid
is a hard case for a contraction hierarchy (no road hierarchy to exploit): pandana is much faster on real street
networks of that size. Even on a 25-node network ``Network()`` takes 0.1-0.5 s with 2 OpenMP threads (thread
start-up and waiting), 0.01 s with OMP_NUM_THREADS=1.

Threads: pandana uses OpenMP (its vendored libgomp) with ``omp_get_max_threads()`` threads: OMP_NUM_THREADS, or
all cores. ``threads`` in the JSON is that number as the loaded OpenMP runtime reports it (threadpoolctl), else
OMP_NUM_THREADS, else ``os.cpu_count()``.

Usage: ``pandana_peer.py --dir DIR [--k 3] [--max-cost 1800] [--out DIR2]``.
"""

import argparse
import json
import math
import os
import re
import sys
import time

import numpy as np


def read_input(d):
    """nodes, edges and POIs from DIR as numpy arrays / lists, checked."""
    import pandas as pd

    nodes = pd.read_csv(os.path.join(d, "nodes.csv"), dtype={"id": np.int64, "x": np.float64, "y": np.float64})
    edges = pd.read_csv(os.path.join(d, "edges.csv"), dtype={"from": np.int64, "to": np.int64, "weight": np.float64})
    pois = pd.read_csv(
        os.path.join(d, "pois.csv"),
        dtype={"category": str, "node": np.int64, "x": np.float64, "y": np.float64},
        keep_default_na=False,
    )
    for name, df, cols in (
        ("nodes.csv", nodes, ["id", "x", "y"]),
        ("edges.csv", edges, ["from", "to", "weight"]),
        ("pois.csv", pois, ["category", "node", "x", "y"]),
    ):
        if list(df.columns) != cols:
            raise SystemExit(f"{name}: header {list(df.columns)}, expected {cols}")
    n = len(nodes)
    if n == 0:
        raise SystemExit("nodes.csv: no nodes")
    if not np.array_equal(nodes["id"].to_numpy(), np.arange(n)):
        raise SystemExit("nodes.csv: ids must be 0..n-1 in order")
    ef, et, w = edges["from"].to_numpy(), edges["to"].to_numpy(), edges["weight"].to_numpy()
    if len(ef) and (ef.min() < 0 or ef.max() >= n or et.min() < 0 or et.max() >= n):
        raise SystemExit("edges.csv: an edge end is not a node id")
    if not np.all(np.isfinite(w) & (w > 0)):
        raise SystemExit("edges.csv: weights must be finite and > 0")
    pn = pois["node"].to_numpy()
    if len(pn) and (pn.min() < 0 or pn.max() >= n):
        raise SystemExit("pois.csv: a POI node is not a node id")
    if len(pn) and not (
        np.array_equal(pois["x"].to_numpy(), nodes["x"].to_numpy()[pn])
        and np.array_equal(pois["y"].to_numpy(), nodes["y"].to_numpy()[pn])
    ):
        bad = np.nonzero((pois["x"].to_numpy() != nodes["x"].to_numpy()[pn]) | (pois["y"].to_numpy() != nodes["y"].to_numpy()[pn]))[0]
        i = int(bad[0])
        raise SystemExit(
            f"pois.csv: {len(bad)} POIs do not sit exactly on their node's coordinates, e.g. row {i + 2}: "
            f"({float(pois['x'].iat[i])!r}, {float(pois['y'].iat[i])!r}) but node {int(pn[i])} is at "
            f"({float(nodes['x'].iat[int(pn[i])])!r}, {float(nodes['y'].iat[int(pn[i])])!r})"
        )
    categories = list(dict.fromkeys(pois["category"].tolist()))
    for c in categories:
        if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*", c):
            raise SystemExit(f"pois.csv: category {c!r} is not usable as a file name ([A-Za-z0-9_.-], no leading dot)")
    return nodes, edges, pois, categories


def check_poi_mapping(net, nodes, pois):
    """pandana's own coordinate -> node mapping must give the `node` column back."""
    got = net.get_node_ids(pois["x"], pois["y"]).to_numpy()
    want = pois["node"].to_numpy()
    if len(got) != len(want):
        raise SystemExit(f"pandana mapped {len(got)} of {len(want)} POIs to nodes")
    bad = np.nonzero(got != want)[0]
    if len(bad) == 0:
        return
    x, y = nodes["x"].to_numpy(), nodes["y"].to_numpy()
    same = (x[got[bad]] == x[want[bad]]) & (y[got[bad]] == y[want[bad]])
    i = int(bad[0])
    lines = [
        f"pandana maps {len(bad)} of {len(want)} POIs to a node other than pois.csv's `node` "
        f"(e.g. pois.csv row {i + 2}, category {pois['category'].iat[i]!r}: node {int(want[i])}, pandana: node {int(got[i])})."
    ]
    if same.any():
        j = int(bad[np.argmax(same)])
        lines.append(
            f"{int(same.sum())} of them because distinct nodes share coordinates: nodes {int(want[j])} and "
            f"{int(got[j])} are both at ({float(x[want[j]])!r}, {float(y[want[j]])!r}); pandana places POIs by coordinates "
            "and cannot tell such nodes apart. Give each node (at least each node with a POI) its own coordinates."
        )
    if (~same).any():
        lines.append(f"{int((~same).sum())} of them with different coordinates (KD-tree precision?)")
    raise SystemExit("\n".join(lines))


def omp_threads():
    """Threads pandana's OpenMP runtime will use."""
    try:
        from threadpoolctl import threadpool_info

        info = [p for p in threadpool_info() if p.get("user_api") == "openmp"]
        mine = [p for p in info if "pandana" in (p.get("filepath") or "")] or info
        if mine:
            return int(mine[0]["num_threads"]), "openmp runtime"
    except Exception:  # noqa: BLE001 - threadpoolctl is optional
        pass
    env = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
    if env.isdigit() and int(env) > 0:
        return int(env), "OMP_NUM_THREADS"
    return os.cpu_count() or 1, "os.cpu_count()"


def run(a):
    import pandas as pd
    from importlib.metadata import version

    import pandana

    if a.k < 1:
        raise SystemExit("--k must be >= 1")
    if not (0 < a.max_cost < 4294967):
        raise SystemExit("--max-cost must be in (0, 4294967): pandana keeps distances as 32-bit integers of 1/1000")

    t = time.perf_counter()
    nodes, edges, pois, categories = read_input(a.dir)
    read_seconds = time.perf_counter() - t
    n, m, k = len(nodes), len(edges), int(a.k)
    w = edges["weight"].to_numpy()
    milli = w * 1000.0
    weights_truncated = int(np.count_nonzero(milli != np.floor(milli)))
    weights_below_resolution = int(np.count_nonzero(milli < 1.0))
    if weights_truncated:
        print(
            f"pandana_peer: {weights_truncated} of {m} edge weights are not whole multiples of 0.001 and are "
            "truncated by pandana (distances come out shorter than float64 ones)",
            file=sys.stderr,
        )

    print(f"pandana_peer: {n} nodes, {m} edges, {len(pois)} POIs in {len(categories)} categories", file=sys.stderr)
    # same index (0..n-1 / 0..m-1) on everything, as the constructor joins and merges on it
    node_x, node_y = nodes["x"], nodes["y"]
    node_x.index = node_y.index = pd.RangeIndex(n)
    edge_from, edge_to = edges["from"], edges["to"]
    weights = edges[["weight"]]

    t = time.perf_counter()
    net = pandana.Network(node_x, node_y, edge_from, edge_to, weights, twoway=False)
    preprocess_seconds = time.perf_counter() - t
    sys.stdout.flush()

    check_poi_mapping(net, nodes, pois)
    threads, threads_from = omp_threads()

    per_category, results = {}, {}
    query_seconds = 0.0
    for c in categories:
        sel = pois[pois["category"] == c]
        x_col, y_col = sel["x"], sel["y"]
        t = time.perf_counter()
        net.set_pois(category=c, maxdist=a.max_cost, maxitems=k, x_col=x_col, y_col=y_col)
        df = net.nearest_pois(distance=a.max_cost, category=c, num_pois=k, max_distance=math.inf)
        s = time.perf_counter() - t
        per_category[c] = s
        query_seconds += s
        results[c] = df
        print(f"pandana_peer: category {c}: {len(sel)} POIs, {s:.3f} s", file=sys.stderr)
    sys.stdout.flush()

    from sklearn.neighbors import KDTree

    t = time.perf_counter()
    KDTree(nodes[["x", "y"]].to_numpy(dtype=np.float64))
    kdtree_seconds = time.perf_counter() - t

    if a.out:
        os.makedirs(a.out, exist_ok=True)
        for c in categories:
            df = results[c].reindex(pd.RangeIndex(n))
            v = df[list(range(1, k + 1))].to_numpy(dtype=np.float64)
            if v.shape != (n, k) or np.isnan(v).any():
                raise SystemExit(f"category {c}: pandana's result does not cover node ids 0..{n - 1}")
            np.ascontiguousarray(v, dtype="<f8").tofile(os.path.join(a.out, f"{c}.f64"))
        with open(os.path.join(a.out, "meta.json"), "w", encoding="utf-8") as f:
            json.dump({"n": n, "k": k, "categories": categories, "max_cost": a.max_cost}, f)
            f.write("\n")

    return {
        "peer": "pandana",
        "version": version("pandana"),
        "nodes": n,
        "edges": m,
        "pois": len(pois),
        "categories": categories,
        "k": k,
        "max_cost": a.max_cost,
        "read_seconds": read_seconds,
        "preprocess_seconds": preprocess_seconds,
        "query_seconds": query_seconds,
        "per_category_seconds": per_category,
        "total_seconds": preprocess_seconds + query_seconds,
        "kdtree_seconds": kdtree_seconds,
        "threads": threads,
        "threads_from": threads_from,
        "distance_resolution": 0.001,
        "distance_dtype": "float32",
        "weights_truncated": weights_truncated,
        "weights_below_resolution": weights_below_resolution,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    ap.add_argument("--dir", required=True, help="directory with nodes.csv, edges.csv, pois.csv")
    ap.add_argument("--k", type=int, default=3, help="number of nearest POIs per category (pandana's num_pois)")
    ap.add_argument("--max-cost", type=float, default=1800.0,
                    help="search radius in the weight's unit (pandana's maxdist / distance)")
    ap.add_argument("--out", help="write <category>.f64 (n x k float64, +inf = not found) and meta.json here")
    a = ap.parse_args()

    # pandana's C++ writes to file descriptor 1: point it at stderr and keep the real stdout for the JSON line
    sys.stdout.flush()
    real_stdout = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    try:
        result = run(a)
    except SystemExit as e:
        if isinstance(e.code, str):  # a message: on a line of its own, after pandana's unterminated progress line
            print(f"\npandana_peer: error: {e.code}", file=sys.stderr)
            sys.stderr.flush()
            os._exit(1)
        raise
    sys.stderr.flush()
    real_stdout.write(json.dumps(finite(result), allow_nan=False) + "\n")
    real_stdout.flush()


def finite(v):
    """The result with NaN and infinities as null: strict JSON."""
    if isinstance(v, dict):
        return {k: finite(x) for k, x in v.items()}
    if isinstance(v, list):
        return [finite(x) for x in v]
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


if __name__ == "__main__":
    main()

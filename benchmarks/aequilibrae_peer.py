#!/usr/bin/env python3
"""AequilibraE's bi-conjugate Frank-Wolfe on a TNTP network: the peer of `urbantwin bench traffic`.

Reads a TNTP network and trip table, builds an AequilibraE graph (no project: a project adds a SpatiaLite database
with geometries that the assignment never reads), assigns with ``TrafficAssignment`` / algorithm ``bfw`` / BPR with
each link's alpha (TNTP ``B``) and beta (TNTP ``power``), and prints ONE JSON line on stdout (everything AequilibraE
itself prints goes to stderr).

Same problem as urbantwin's:

- generalised cost ``t0 * (1 + B * (x / cap)^P) + toll_factor * toll + distance_factor * length``: the fixed part is
  a graph field handed to ``TrafficClass.set_fixed_cost`` with value of time 1, which AequilibraE adds to the
  congested time in its shortest paths, its line search and its gap, exactly like the fixed terms of urbantwin's
  cost. Two differences, both exact or negligible: AequilibraE refuses free-flow times of 0 (Chicago-Sketch's 774
  connectors), so those links get ``--zero-time`` (1e-9 minutes) and ``alpha = 0``: a constant 1e-9 minutes on top
  of their distance cost of about 0.035 minutes, a relative change of 3e-8 on those links; and it refuses
  ``beta < 1``, so links with ``B = 0`` or ``P = 0`` (constant cost ``t0 * (1 + B)``; Barcelona's connectors) get
  ``fftime = t0 * (1 + B)``, ``alpha = 0``, ``beta = 1``, which is the same cost.
- TNTP's ``<FIRST THRU NODE>``: zones below it may not be passed through. AequilibraE blocks flows through all
  centroids or none (``Graph.set_blocked_centroid_flows``): blocked when the first through node is zones + 1
  (Barcelona), not blocked when it is 1 (Sioux Falls, Anaheim, Chicago-Sketch); anything else is refused.

Relative gap. AequilibraE's own ``rgap`` (``LinearApproximation.check_convergence``) is
``|sum c(x_k) * x_{k+1} - sum c(x_k) * y| / sum c(x_k) * x_{k+1}``, ``y`` the all-or-nothing load at the costs
``c(x_k)``: it prices the flows AFTER the iteration's step, ``x_{k+1}``, at the costs BEFORE it. That is not
urbantwin's ``(TSTT - SPTT) / TSTT``, whose TSTT and SPTT are both measured at one set of flows ``x`` and its costs
``c(x)``; late in a run, when steps are small, AequilibraE's number is close to urbantwin's gap of the previous
iterate (one iteration behind: on Chicago-Sketch its rgap reaches 1e-4 one iteration after urbantwin's gap does),
early on it is not. So after each
iteration this script also measures urbantwin's gap at AequilibraE's current flows ``x_{k+1}``, with its own
Dijkstra (scipy) on the uncompressed TNTP network; that measurement is timed separately and SUBTRACTED from the
reported times. With ``--stop-on ours`` (the default) the assignment stops when urbantwin's gap reaches ``--gap``;
with ``--stop-on aequilibrae`` when AequilibraE's does. Both gaps are in the per-iteration history.

What is timed (``seconds``): ``TrafficAssignment.execute()`` (AequilibraE's result buffers, all-or-nothing set-up,
every iteration with its convergence check), minus the time of urbantwin's gap measurements. Not timed
(``setup_seconds``): reading the files, building the graph (``prepare_graph``: compression, dead-end removal), the
matrix and the assignment object. After the run, not timed either: the Beckmann objective and the node balance of
the final link flows (in - out = attractions - productions at zones, 0 elsewhere) and, with ``--reference``, the
largest difference to a best-known ``_flow.tntp`` solution.

Dead ends (``--prune-dead-ends``). AequilibraE 1.7.2 compresses chains of degree-two nodes into single links. Its
dead-end removal leaves sinks alone ("we have no (current) means to remove these edges"), and a node with two links
IN and none out counts as degree two: Barcelona's node 1008 (links 913 -> 1008 and 929 -> 1008, in file order
2182 and 2238) becomes one compressed link marked direction -999 ("cannot be traversed"), which the directed graph
builder then treats as two-way (it only knows 1 and -1). Paths 929 -> 1008 -> 913 that do not exist carry flow:
on Barcelona 828 vehicles enter node 1008 and never leave, and as many leave node 913 without arriving, so the
flows are not flows of the network, and urbantwin's gap measured on the real network goes negative. (The upstream
source now drops -999 chains and prunes sinks; the release on PyPI, 1.7.2, does not.) ``--prune-dead-ends`` leaves
out, before AequilibraE sees the network, every link into a non-zone node with no way out and out of one with no
way in (repeatedly): no trip can use them, every feasible flow is 0 on them, so the problem is the same, and
AequilibraE then solves it correctly. They are reported with flow 0.

Usage: ``aequilibrae_peer.py --net NET.tntp --trips TRIPS.tntp --gap 1e-6 [--max-iter N] [--max-seconds S]
[--toll-factor F] [--distance-factor F] [--stop-on ours|aequilibrae] [--cores N] [--reference FLOW.tntp]
[--flows-out FILE.csv] [--prune-dead-ends] [--keep-dead-ends]``.
"""

import argparse
import contextlib
import json
import math
import os
import re
import sys
import time

import numpy as np


# ----------------------------------------------------------------------------------------------------------------
# TNTP files


def _metadata(lines):
    meta, body = {}, []
    in_body = False
    for line in lines:
        if in_body:
            body.append(line)
            continue
        m = re.match(r"\s*<([^>]+)>\s*(.*)", line)
        if m:
            key = m.group(1).strip().upper()
            if key == "END OF METADATA":
                in_body = True
            else:
                meta[key] = m.group(2).strip()
    return meta, body


def read_net(path):
    """The links of a TNTP network, in file order, as numpy arrays, and its header."""
    with open(path, encoding="utf-8", errors="replace") as f:
        meta, body = _metadata(f.read().splitlines())
    rows = []
    for line in body:
        line = line.strip()
        if not line or line.startswith("~"):
            continue
        parts = line.replace(";", " ").split()
        if len(parts) < 9:
            continue
        rows.append([float(p) for p in parts[:10]] + [0.0] * (10 - len(parts[:10])))
    a = np.array(rows, dtype=np.float64)
    net = {
        "zones": int(meta["NUMBER OF ZONES"]),
        "nodes": int(meta["NUMBER OF NODES"]),
        "first_thru_node": int(meta.get("FIRST THRU NODE", "1")),
        "init": a[:, 0].astype(np.int64),
        "term": a[:, 1].astype(np.int64),
        "capacity": a[:, 2],
        "length": a[:, 3],
        "fft": a[:, 4],
        "b": a[:, 5],
        "power": a[:, 6],
        "toll": a[:, 8],
    }
    declared = int(meta.get("NUMBER OF LINKS", len(rows)))
    if declared != len(rows):
        raise SystemExit(f"{path}: <NUMBER OF LINKS> {declared} but {len(rows)} links read")
    return net


def read_trips(path, zones):
    """The trip table as a dense zones x zones matrix (TNTP zone i is row i - 1)."""
    with open(path, encoding="utf-8", errors="replace") as f:
        meta, body = _metadata(f.read().splitlines())
    n = int(meta["NUMBER OF ZONES"])
    if n > zones:
        raise SystemExit(f"{path}: {n} zones but the network has {zones}")
    od = np.zeros((zones, zones), dtype=np.float64)
    origin = None
    for line in body:
        line = line.strip()
        if not line or line.startswith("~"):
            continue
        m = re.match(r"Origin\s+(\d+)", line, re.IGNORECASE)
        if m:
            origin = int(m.group(1))
            continue
        for d, v in re.findall(r"(\d+)\s*:\s*([-+0-9.eE]+)", line):
            od[origin - 1, int(d) - 1] += float(v)
    return od


def read_flows(path):
    """A `_flow.tntp` solution: (from, to, volume) per link, in file order."""
    out = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            parts = line.replace(";", " ").split()
            if len(parts) < 3:
                continue
            try:
                out.append((int(parts[0]), int(parts[1]), float(parts[2])))
            except ValueError:
                continue  # the header
    return out


# ----------------------------------------------------------------------------------------------------------------
# urbantwin's definitions, on the uncompressed TNTP network


class Measure:
    """Link costs, Beckmann objective and urbantwin's relative gap (TSTT - SPTT) / TSTT at given link flows."""

    def __init__(self, net, od, toll_factor, distance_factor):
        from scipy.sparse import csr_matrix

        self.net = net
        self.t0 = net["fft"]
        self.b = net["b"]
        self.p = net["power"]
        self.cap = net["capacity"]
        self.fixed = toll_factor * net["toll"] + distance_factor * net["length"]
        self.od = od.copy()
        np.fill_diagonal(self.od, 0.0)
        self.origins = np.nonzero(self.od.sum(axis=1) > 0)[0]
        n, z = net["nodes"], net["zones"]
        # zones below the first through node are split: paths start at node z, end at node n + z, so none passes
        # through a zone
        blocked = net["first_thru_node"] - 1
        tail = net["init"] - 1
        head = net["term"] - 1
        head = np.where(head < blocked, head + n, head)
        self.dest = np.array([zz + n if zz < blocked else zz for zz in range(z)])
        self.size = n + blocked
        key = tail * self.size + head
        self.order = np.argsort(key, kind="stable")
        k = key[self.order]
        self.starts = np.r_[0, np.nonzero(np.diff(k))[0] + 1]
        uk = k[self.starts]
        self.rows, self.cols = uk // self.size, uk % self.size
        self.csr_matrix = csr_matrix

    def costs(self, x):
        ratio = np.where(self.cap > 0, x / np.where(self.cap > 0, self.cap, 1.0), 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            pw = np.where(self.p == 0, 1.0, np.power(np.maximum(ratio, 0.0), self.p))
        return self.t0 * (1.0 + self.b * pw) + self.fixed

    def objective(self, x):
        ratio = x / np.where(self.cap > 0, self.cap, 1.0)
        pw = np.where(self.p == 0, 1.0, np.power(np.maximum(ratio, 0.0), self.p))
        return float(np.sum((self.t0 + self.fixed) * x + self.t0 * self.b * x * pw / (self.p + 1.0)))

    def gap(self, x):
        """(TSTT, SPTT, relative gap) at flows x, every cost at x."""
        from scipy.sparse.csgraph import dijkstra

        c = self.costs(x)
        tstt = float(np.dot(x, c))
        w = np.minimum.reduceat(c[self.order], self.starts)  # parallel links: the cheaper
        g = self.csr_matrix((w, (self.rows, self.cols)), shape=(self.size, self.size))
        dist = dijkstra(g, directed=True, indices=self.origins)
        od = self.od[self.origins]
        # pairs without trips may have no path (inf); pairs with trips and no path make SPTT inf
        sptt = float(np.sum(np.where(od > 0, dist[:, self.dest], 0.0) * od))
        return tstt, sptt, (tstt - sptt) / tstt if tstt > 0 else 0.0

    def node_balance(self, x):
        """The largest |in - out - (attractions - productions)| over nodes, and the TNTP node where it is."""
        n = self.net["nodes"]
        bal = np.zeros(n)
        np.add.at(bal, self.net["term"] - 1, x)
        np.subtract.at(bal, self.net["init"] - 1, x)
        z = self.net["zones"]
        bal[:z] -= self.od.sum(axis=0) - self.od.sum(axis=1)
        i = int(np.argmax(np.abs(bal)))
        return float(abs(bal[i])), i + 1, int(np.sum(np.abs(bal) > 1e-6 * max(1.0, self.od.sum())))


def dead_end_links(net):
    """Links no trip can use: into a node that is not a zone and has no way out, or out of one with no way in,
    repeated until none is left. Every feasible flow is 0 on them, so leaving them out gives the same problem."""
    n, z = net["nodes"], net["zones"]
    tail, head = net["init"] - 1, net["term"] - 1
    dead = np.zeros(len(tail), dtype=bool)
    while True:
        outdeg = np.bincount(tail[~dead], minlength=n)
        indeg = np.bincount(head[~dead], minlength=n)
        trap = np.arange(n) >= z
        more = ~dead & ((trap[head] & (outdeg[head] == 0)) | (trap[tail] & (indeg[tail] == 0)))
        if not more.any():
            return dead
        dead |= more


# ----------------------------------------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    ap.add_argument("--net", required=True)
    ap.add_argument("--trips", required=True)
    ap.add_argument("--gap", type=float, default=1e-6, help="stop at this relative gap (see --stop-on)")
    ap.add_argument("--max-iter", type=int, default=10_000)
    ap.add_argument("--max-seconds", type=float, default=None, help="stop after this many (timed) seconds")
    ap.add_argument("--toll-factor", type=float, default=0.0)
    ap.add_argument("--distance-factor", type=float, default=0.0)
    ap.add_argument("--stop-on", choices=["ours", "aequilibrae"], default="ours",
                    help="whose relative gap decides when to stop (default: urbantwin's (TSTT - SPTT) / TSTT)")
    ap.add_argument("--cores", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--zero-time", type=float, default=1e-9,
                    help="free-flow time given to links with 0 (AequilibraE refuses 0)")
    ap.add_argument("--reference", help="a best-known _flow.tntp solution to compare the final flows with")
    ap.add_argument("--flows-out", help="write the final link flows as CSV (init,term,flow; file order)")
    ap.add_argument("--prune-dead-ends", action="store_true",
                    help="leave out links into non-zone nodes without a way out (and out of ones without a way in) "
                    "before AequilibraE sees the network: works around its compression of such nodes")
    ap.add_argument("--keep-dead-ends", action="store_true",
                    help="prepare_graph(remove_dead_ends=False) (default: AequilibraE's default, True)")
    a = ap.parse_args()

    real_stdout = sys.stdout
    with contextlib.redirect_stdout(sys.stderr):
        result = run(a)
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


def run(a):
    import logging

    import pandas as pd

    # AequilibraE draws tqdm progress bars per iteration and per zone batch unless told not to; they cost time
    os.environ.setdefault("AEQ_SHOW_PROGRESS", "FALSE")
    from importlib.metadata import version

    from aequilibrae.matrix import AequilibraeMatrix
    from aequilibrae.paths import Graph, TrafficAssignment, TrafficClass

    logging.getLogger("aequilibrae").setLevel(logging.WARNING)

    t_setup = time.perf_counter()
    net = read_net(a.net)
    z, n_links = net["zones"], len(net["init"])
    od = read_trips(a.trips, z)
    np.fill_diagonal(od, 0.0)  # intrazonal trips are not assigned (by urbantwin either)
    ftn = net["first_thru_node"]
    if ftn == 1:
        block = False
    elif ftn == z + 1:
        block = True
    else:
        raise SystemExit(
            f"<FIRST THRU NODE> {ftn} with {z} zones: AequilibraE blocks all centroids or none, so only 1 or zones + 1"
        )

    constant = (net["b"] == 0) | (net["power"] == 0)
    fft = np.where(constant, net["fft"] * (1.0 + net["b"]), net["fft"])
    zero = fft <= 0
    fft = np.where(zero, a.zero_time, fft)
    alpha = np.where(constant | zero, 0.0, net["b"])
    beta = np.where(constant | zero, 1.0, net["power"])
    fixed = a.toll_factor * net["toll"] + a.distance_factor * net["length"]

    live = np.ones(n_links, dtype=bool)
    if a.prune_dead_ends:
        live = ~dead_end_links(net)
    df = pd.DataFrame(
        {
            "link_id": np.arange(1, n_links + 1, dtype=np.int64),
            "a_node": net["init"],
            "b_node": net["term"],
            "direction": np.ones(n_links, dtype=np.int8),
            "free_flow_time": fft,
            "capacity": net["capacity"],
            "alpha": alpha,
            "beta": beta,
            "fixed_cost": fixed,
        }
    )[live]
    g = Graph()
    g.network = df
    g.prepare_graph(np.arange(1, z + 1, dtype=np.int64), remove_dead_ends=not a.keep_dead_ends)
    g.set_graph("free_flow_time")
    g.set_skimming([])
    g.set_blocked_centroid_flows(block)

    mat = AequilibraeMatrix()
    mat.create_empty(memory_only=True, zones=z, matrix_names=["demand"])
    mat.index[:] = np.arange(1, z + 1)
    mat.matrices[:, :, 0] = od
    mat.computational_view(["demand"])

    tc = TrafficClass("car", g, mat)
    if np.any(fixed > 0):
        tc.set_fixed_cost("fixed_cost", 1.0)
        tc.set_vot(1.0)
    assig = TrafficAssignment()
    assig.set_classes([tc])
    assig.set_vdf("BPR")
    assig.set_vdf_parameters({"alpha": "alpha", "beta": "beta"})
    assig.set_capacity_field("capacity")
    assig.set_time_field("free_flow_time")
    assig.max_iter = int(a.max_iter)
    # with --stop-on ours the wrapper below decides; AequilibraE's own test must then never stop it first
    assig.rgap_target = float(a.gap) if a.stop_on == "aequilibrae" else 0.0
    assig.set_algorithm("bfw")
    assig.set_cores(a.cores)
    measure = Measure(net, od, a.toll_factor, a.distance_factor)
    setup_seconds = time.perf_counter() - t_setup

    la = assig.assignment  # LinearApproximation
    supernet = g.graph["__supernet_id__"].to_numpy()
    link_of = g.graph["link_id"].to_numpy() - 1  # TNTP file order

    def tntp_flows():
        x = np.zeros(n_links)
        x[link_of] = la.fw_total_flow[supernet]
        return x

    state = {"start": None, "excluded": 0.0, "history": [], "stop": "max-iterations"}
    original = la.check_convergence

    def check_convergence():
        aeq_converged = original()
        t = time.perf_counter()
        elapsed = t - state["start"] - state["excluded"]
        tstt, sptt, gap = measure.gap(tntp_flows())
        state["history"].append(
            {"iteration": la.iter, "seconds": elapsed, "aequilibrae_gap": float(la.rgap), "gap": gap}
        )
        if a.stop_on == "ours":
            done = gap <= a.gap
        else:
            done = aeq_converged
        if done:
            state["stop"] = "converged"
        elif a.max_seconds is not None and elapsed >= a.max_seconds:
            state["stop"] = "max-seconds"
            done = True
        state["excluded"] += time.perf_counter() - t
        return done

    la.check_convergence = check_convergence

    state["start"] = time.perf_counter()
    assig.execute(log_specification=False)
    wall = time.perf_counter() - state["start"]
    seconds = wall - state["excluded"]

    x = tntp_flows()
    tstt, sptt, gap = measure.gap(x)
    balance, balance_node, unbalanced = measure.node_balance(x)
    out = {
        "peer": "aequilibrae",
        "version": version("aequilibrae"),
        "algorithm": "bfw",
        "network": os.path.basename(a.net),
        "nodes": net["nodes"],
        "links": n_links,
        "zones": z,
        "compressed_links": int(g.compact_num_links),
        "blocked_centroid_flows": block,
        "dead_ends_removed": not a.keep_dead_ends,
        "pruned_links": int((~live).sum()),
        "cores": a.cores,
        "stop_on": a.stop_on,
        "target_gap": a.gap,
        "toll_factor": a.toll_factor,
        "distance_factor": a.distance_factor,
        "zero_time_links": int(zero.sum()),
        "seconds": seconds,
        "wall_seconds": wall,
        "gap_check_seconds": state["excluded"],
        "setup_seconds": setup_seconds,
        "iterations": int(la.iter),
        "stop": state["stop"],
        "converged": state["stop"] == "converged",
        "relative_gap": gap,
        "aequilibrae_relative_gap": float(la.rgap),
        "tstt": tstt,
        "sptt": sptt,
        "objective": measure.objective(x),
        "total_trips": float(od.sum()),
        "node_balance": balance,
        "node_balance_node": balance_node,
        "unbalanced_nodes": unbalanced,
        "history": state["history"],
        "reference": None,
    }
    if a.reference:
        ref = read_flows(a.reference)
        if len(ref) != n_links or any(
            (f, t) != (int(i), int(j)) for (f, t, _), i, j in zip(ref, net["init"], net["term"])
        ):
            out["reference"] = {"file": os.path.basename(a.reference), "error": "links differ from the network's"}
        else:
            rx = np.array([v for _, _, v in ref])
            diff = np.abs(x - rx)
            i = int(np.argmax(diff))
            # equilibrium flows are unique only where the cost grows with the flow (not on B = 0 connectors)
            varying = (net["b"] > 0) & (net["power"] > 0) & (net["fft"] > 0)
            dv = np.where(varying, diff, 0.0)
            j = int(np.argmax(dv))
            out["reference"] = {
                "file": os.path.basename(a.reference),
                "max_abs_diff": float(diff[i]),
                "max_abs_diff_link": i + 1,
                "max_abs_diff_flow_dependent": float(dv[j]),
                "max_abs_diff_flow_dependent_link": j + 1,
                "max_rel_diff_flow_dependent": float(np.max(np.where(varying, diff / np.maximum(rx, 1.0), 0.0))),
                "objective": measure.objective(rx),
            }
    if a.flows_out:
        with open(a.flows_out, "w", encoding="utf-8") as f:
            f.write("init,term,flow\n")
            for i, j, v in zip(net["init"], net["term"], x):
                f.write(f"{i},{j},{float(v)!r}\n")
    return out


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Writes the committed fuzz seeds in fuzz/seeds/<target>/: small, hand-made files (no third-party data is copied:
scripts/fuzz adds the files of ../shared/data to the generated corpus at run time instead).

Run from anywhere: python3 fuzz/make_seeds.py. The output is deterministic.
"""

import json
import os
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
SEEDS = os.path.join(HERE, "seeds")


def write(target, name, data):
    d = os.path.join(SEEDS, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ---------------------------------------------------------------- protobuf, just enough for OSM PBF

def varint(n):
    out = bytearray()
    n &= (1 << 64) - 1
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def zigzag(n):
    return (n << 1) ^ (n >> 63)


def key(field, wire):
    return varint((field << 3) | wire)


def f_varint(field, n):
    return key(field, 0) + varint(n)


def f_sint(field, n):
    return key(field, 0) + varint(zigzag(n))


def f_bytes(field, b):
    if isinstance(b, str):
        b = b.encode()
    return key(field, 2) + varint(len(b)) + b


def f_packed(field, values, signed=False):
    body = b"".join(varint(zigzag(v) if signed else v) for v in values)
    return f_bytes(field, body)


def deltas(values):
    out, prev = [], 0
    for v in values:
        out.append(v - prev)
        prev = v
    return out


def blob(kind, message, compress):
    if compress:
        body = f_varint(2, len(message)) + f_bytes(3, zlib.compress(message, 9))
    else:
        body = f_bytes(1, message)
    header = f_bytes(1, kind) + f_varint(3, len(body))
    return struct.pack(">I", len(header)) + header + body


def pbf(compress):
    strings = ["", "highway", "residential", "name", "Testikatu", "amenity", "cafe", "building", "yes",
               "type", "multipolygon", "outer", "inner", "footway", "height", "12 m", "landuse", "grass"]
    sid = {s: i for i, s in enumerate(strings)}
    stringtable = f_bytes(1, b"".join(f_bytes(1, s) for s in strings))

    # dense nodes 1..8 (1e-7 degrees at granularity 100), node 3 a cafe
    ids = [1, 2, 3, 4, 5, 6, 7, 8]
    lats = [600000000 + 10000 * i for i in range(8)]
    lons = [240000000 + 7000 * (i % 3) for i in range(8)]
    kv = []
    for i in ids:
        if i == 3:
            kv += [sid["amenity"], sid["cafe"], sid["name"], sid["Testikatu"]]
        kv.append(0)
    dense = (f_packed(1, deltas(ids), True) + f_packed(8, deltas(lats), True)
             + f_packed(9, deltas(lons), True) + f_packed(10, kv))
    group_dense = f_bytes(2, dense)
    # one plain node with a tag
    node = (f_sint(1, 9) + f_packed(2, [sid["amenity"]]) + f_packed(3, [sid["cafe"]])
            + f_sint(8, 600090000) + f_sint(9, 240010000))
    group_node = f_bytes(1, node)

    def way(wid, refs, tags):
        return f_bytes(3, f_varint(1, wid) + f_packed(2, [sid[k] for k, _ in tags])
                       + f_packed(3, [sid[v] for _, v in tags]) + f_packed(8, deltas(refs), True))

    group_ways = (way(100, [1, 2, 3], [("highway", "residential"), ("name", "Testikatu")])
                  + way(101, [2, 9], [("highway", "footway")])
                  + way(200, [4, 5, 6, 4], [("building", "yes"), ("height", "12 m")])
                  + way(201, [5, 6, 7], [])
                  + way(202, [7, 8, 5], [])
                  + way(203, [1, 2, 99, 1], [("landuse", "grass")]))
    rel = (f_varint(1, 300) + f_packed(2, [sid["type"], sid["building"]])
           + f_packed(3, [sid["multipolygon"], sid["yes"]])
           + f_packed(8, [sid["outer"], sid["outer"], sid["inner"]])
           + f_packed(9, deltas([201, 202, 203]), True) + f_packed(10, [1, 1, 1]))
    group_rels = f_bytes(4, rel)

    header = f_bytes(4, "OsmSchema-V0.6") + f_bytes(4, "DenseNodes") + f_bytes(16, "make_seeds.py")
    block1 = stringtable + f_bytes(2, group_dense) + f_bytes(2, group_node)
    block2 = stringtable + f_bytes(2, group_ways) + f_bytes(2, group_rels)
    return (blob("OSMHeader", header, compress) + blob("OSMData", block1, compress)
            + blob("OSMData", block2, compress))


OSM_XML = """<?xml version="1.0" encoding="UTF-8"?>
<osm version="0.6" generator="hand">
  <bounds minlat="60.0" minlon="24.0" maxlat="60.01" maxlon="24.01"/>
  <node id="1" lat="60.0000" lon="24.0000"/>
  <node id="2" lat="60.0010" lon="24.0000"/>
  <node id="3" lat="60.0020" lon="24.0000"/>
  <node id="4" lat="60.0010" lon="24.0010"/>
  <node id="10" lat="60.0050" lon="24.0050"/>
  <node id="11" lat="60.0050" lon="24.0060"/>
  <node id="12" lat="60.0060" lon="24.0060"/>
  <node id="13" lat="60.0060" lon="24.0050"/>
  <node id="30" lat="60.0040" lon="24.0040">
    <tag k="amenity" v="cafe"/>
    <tag k="name" v="Kahvila &amp; Leipomo"/>
  </node>
  <way id="100">
    <nd ref="1"/><nd ref="2"/><nd ref="3"/>
    <tag k="highway" v="primary"/>
    <tag k="maxspeed" v="FI:urban"/>
    <tag k="lanes" v="4"/>
    <tag k="oneway" v="yes"/>
  </way>
  <way id="101"><nd ref="4"/><nd ref="2"/><tag k="highway" v="footway"/></way>
  <way id="200">
    <nd ref="10"/><nd ref="11"/><nd ref="12"/><nd ref="13"/><nd ref="10"/>
    <tag k="building" v="apartments"/>
    <tag k="building:levels" v="4"/>
    <tag k="addr:street" v="Testikatu"/><tag k="addr:housenumber" v="5"/>
  </way>
  <way id="201"><nd ref="10"/><nd ref="11"/><nd ref="12"/></way>
  <way id="202"><nd ref="12"/><nd ref="13"/><nd ref="10"/></way>
  <relation id="300">
    <member type="way" ref="201" role="outer"/>
    <member type="way" ref="202" role="outer"/>
    <member type="node" ref="30" role=""/>
    <tag k="type" v="multipolygon"/>
    <tag k="landuse" v="residential"/>
  </relation>
</osm>
"""

# A 10 x 8 x 6 m box in RD New (+ NAP), with semantics, a BuildingPart and a transform.
BOX_VERTS = [[0, 0, 0], [10000, 0, 0], [10000, 8000, 0], [0, 8000, 0],
             [0, 0, 6000], [10000, 0, 6000], [10000, 8000, 6000], [0, 8000, 6000]]
BOX_SOLID = [[[[0, 3, 2, 1]], [[4, 5, 6, 7]], [[0, 1, 5, 4]], [[1, 2, 6, 5]], [[2, 3, 7, 6]], [[3, 0, 4, 7]]]]


def cityjson_doc(version):
    return {
        "type": "CityJSON", "version": version,
        "transform": {"scale": [0.001, 0.001, 0.001], "translate": [92000.0, 437000.0, 0.0]},
        "metadata": {"referenceSystem": "https://www.opengis.net/def/crs/EPSG/0/7415"},
        "CityObjects": {
            "b1": {"type": "Building", "attributes": {"measuredHeight": 6.0, "function": "residential"},
                   "children": ["b1-p1"],
                   "geometry": [{"type": "Solid", "lod": "2.2", "boundaries": BOX_SOLID,
                                 "semantics": {"surfaces": [{"type": "GroundSurface"}, {"type": "RoofSurface"},
                                                            {"type": "WallSurface"}],
                                               "values": [[0, 1, 2, 2, 2, 2]]}},
                                {"type": "MultiSurface", "lod": "0", "boundaries": [[[0, 1, 2, 3]]]}]},
            "b1-p1": {"type": "BuildingPart", "parents": ["b1"],
                      "geometry": [{"type": "MultiSolid", "lod": 1, "boundaries": [BOX_SOLID]}]},
            "b2": {"type": "Building", "children": ["b2-p1"]},
            "b2-p1": {"type": "BuildingPart", "parents": ["b2"],
                      "geometry": [{"type": "CompositeSurface", "lod": "1.3",
                                    "boundaries": [[[4, 5, 6, 7]], [[0, 1, 5, 4]]]}]},
            "r1": {"type": "Road", "geometry": [{"type": "MultiLineString", "lod": "1", "boundaries": [[0, 1]]}]},
        },
        "vertices": BOX_VERTS,
    }


def cityjson_seq():
    header = {"type": "CityJSON", "version": "2.0",
              "transform": {"scale": [0.01, 0.01, 0.01], "translate": [500000.0, 5761000.0, 0.0]},
              "metadata": {"referenceSystem": "urn:ogc:def:crs:EPSG::32631"},
              "CityObjects": {}, "vertices": []}
    feat = {"type": "CityJSONFeature", "id": "f1",
            "CityObjects": {"f1": {"type": "Building", "geometry": [
                {"type": "MultiSurface", "lod": "1", "boundaries": [[[0, 1, 2, 3]], [[4, 5, 6]]]}]}},
            "vertices": [[0, 0, 100], [1000, 0, 100], [1000, 1000, 100], [0, 1000, 100],
                         [0, 0, 900], [1000, 0, 900], [0, 1000, 900]]}
    lonlat = {"type": "CityJSONFeature", "id": "f2",
              "CityObjects": {"f2": {"type": "Building", "geometry": [
                  {"type": "Solid", "lod": "1", "boundaries": BOX_SOLID}]}},
              "vertices": [[v[0], v[1], v[2]] for v in BOX_VERTS]}
    return "\n".join(json.dumps(x, separators=(",", ":")) for x in [header, feat, lonlat]) + "\n"


GEOJSON = {
    "type": "FeatureCollection",
    "features": [
        {"type": "Feature", "id": "t1", "properties": {"species": "Tilia", "height (m)": 12.5, "id": 4,
                                                       "planted": {"year": 1990}, "nothing": None},
         "geometry": {"type": "Point", "coordinates": [24.94, 60.17]}},
        {"type": "Feature", "id": 22, "properties": {"name": "path"},
         "geometry": {"type": "LineString", "coordinates": [[24.94, 60.17], [24.95, 60.171]]}},
        {"type": "Feature", "properties": None,
         "geometry": {"type": "Polygon", "coordinates": [[[24.9, 60.1], [25.0, 60.1], [25.0, 60.2], [24.9, 60.1]]]}},
        {"type": "Feature", "properties": {"k": [1, 2]},
         "geometry": {"type": "MultiPolygon", "coordinates": [[[[0, 0], [1, 0], [1, 1], [0, 0]]]]}},
        {"type": "Feature", "properties": {}, "geometry": {"type": "GeometryCollection", "geometries": [
            {"type": "MultiPoint", "coordinates": [[1, 2], [3, 4]]},
            {"type": "MultiLineString", "coordinates": [[[1, 2], [3, 4]]]}]}},
        {"type": "Feature", "properties": {"x": 1}, "geometry": None},
    ],
}

GEOJSONSEQ = "\x1e" + "\n\x1e".join(json.dumps(f, separators=(",", ":")) for f in GEOJSON["features"][:3]) + "\n"

CSV_LONLAT = '''\ufeffid,name,lon,lat,height (m),code,type
1,"Puu, iso",24.94,60.17,12.5,007,tree
2,"Lamppu ""A""",24.95,60.171,,42,light
3,Tyhjä,,,,,
'''

CSV_WKT = """name;WKT;value
a;POINT (24.94 60.17);1
b;"LINESTRING (24.94 60.17, 24.95 60.18)";2.5
c;"POLYGON ((24.9 60.1, 25 60.1, 25 60.2, 24.9 60.1), (24.95 60.12, 24.96 60.12, 24.96 60.13, 24.95 60.12))";x
d;POINT EMPTY;
"""

CSV_WKT_COMMA = CSV_WKT.replace(";", ",")

TNTP_NET = """<NUMBER OF ZONES> 2
<NUMBER OF NODES> 3
<FIRST THRU NODE> 1
<NUMBER OF LINKS> 4
<END OF METADATA>

~\tinit_node\tterm_node\tcapacity\tlength\tfree_flow_time\tb\tpower\tspeed\ttoll\tlink_type\t;
\t1\t2\t2000.5\t6\t6\t0.15\t4\t0\t0\t1\t;
\t2\t1\t2000.5\t6\t6\t0.15\t4\t0\t0\t1\t;
\t2\t3\t1000\t4\t4\t0.15\t4\t0\t0\t1\t;
\t3\t2\t1000\t4\t4\t0.15\t4\t0\t0\t1\t;
"""

TNTP_TRIPS = """<NUMBER OF ZONES> 2
<TOTAL OD FLOW> 300.0
<END OF METADATA>


Origin \t1
    1 :      0.0;     2 :    100.0;

Origin \t2
    1 :    200.0;     2 :      0.0;
"""

TNTP_NODE = "Node\tX\tY\t;\n1\t-96.77\t43.61\t;\n2\t-96.71\t43.60\t;\n3\t-96.77\t43.57\t;\n"

TNTP_FLOW = "From \tTo \tVolume \tCost \n1 \t2 \t100.5 \t6.0001 \n2 \t1 \t200 \t6.2 \n2 \t3 \t0 \t4 \n"


def main():
    write("osm_pbf", "small-zlib.osm.pbf", pbf(True))
    write("osm_pbf", "small-raw.osm.pbf", pbf(False))
    write("osm_xml", "small.osm", OSM_XML)
    write("cityjson", "box-2.0.city.json", json.dumps(cityjson_doc("2.0"), indent=1))
    write("cityjson", "box-1.1.city.json", json.dumps(cityjson_doc("1.1"), separators=(",", ":")))
    write("cityjson", "seq.city.jsonl", cityjson_seq())
    write("geojson", "collection.geojson", json.dumps(GEOJSON, indent=1))
    write("geojson", "seq.geojsons", GEOJSONSEQ)
    write("geojson", "feature.geojson", json.dumps(GEOJSON["features"][0]))
    write("csv", "lonlat.csv", CSV_LONLAT)
    write("csv", "wkt.csv", CSV_WKT_COMMA)
    write("csv", "wkt-semicolon.csv", CSV_WKT)
    write("tntp", "small_net.tntp", TNTP_NET)
    write("tntp", "small_trips.tntp", TNTP_TRIPS)
    write("tntp", "small_node.tntp", TNTP_NODE)
    write("tntp", "small_flow.tntp", TNTP_FLOW)


if __name__ == "__main__":
    main()

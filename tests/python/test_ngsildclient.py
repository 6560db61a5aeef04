"""urbantwin against a real third-party NGSI-LD client: ngsildclient (Orange, PyPI).

Starts `urbantwin serve` (binary from $URBANTWIN_BIN, default target/debug/urbantwin) on a free port with a fresh
database, then drives it only through ngsildclient's public API: the Entity builder, Client.create/get/exists/query/
count/upsert/update/delete, Client.batch, Client.types and Client.temporal. Values must round-trip exactly.

Run with tests/python/run.sh (makes a venv with the pinned requirements).
"""

from __future__ import annotations

import os
import socket
import subprocess
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import requests

from ngsildclient import Client, Entity
from ngsildclient.api.helper.temporal import TemporalQuery

ROOT = Path(__file__).resolve().parents[2]
BIN = os.environ.get("URBANTWIN_BIN", str(ROOT / "target" / "debug" / "urbantwin"))
CORE = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld"
T0 = datetime(2024, 3, 1, 12, 0, 0, tzinfo=timezone.utc)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ts(s: str) -> datetime:
    """An NGSI-LD DateTime string as an aware datetime ('...Z' with or without milliseconds)."""
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


def urn(etype: str, name: str) -> str:
    return f"urn:ngsi-ld:{etype}:{name}"


class _Server:
    def __init__(self, proc: subprocess.Popen, port: int, log: Path):
        self.proc, self.port, self.log = proc, port, log
        self.base = f"http://127.0.0.1:{port}"

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""


@pytest.fixture(scope="module")
def server():
    if not os.access(BIN, os.X_OK):
        pytest.fail(f"urbantwin binary not found at {BIN}: build it (cargo build -p twin-cli) or set URBANTWIN_BIN")
    with tempfile.TemporaryDirectory(prefix="urbantwin-ngsild-") as tmp:
        port = free_port()
        log = Path(tmp) / "server.log"
        # a new twin writes nothing without signing in; the administrator opens the default dataset to anyone,
        # as a city does for a sandbox (ngsildclient sends no credentials)
        subprocess.run(
            [BIN, "accounts", "access", "--write", "public", "--db", str(Path(tmp) / "twin.db")],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        with open(log, "wb") as logf:
            proc = subprocess.Popen(
                [BIN, "serve", "--db", str(Path(tmp) / "twin.db"), "--listen", f"127.0.0.1:{port}"],
                stdin=subprocess.DEVNULL,
                stdout=logf,
                stderr=subprocess.STDOUT,
            )
        srv = _Server(proc, port, log)
        try:
            deadline = time.monotonic() + 30
            while True:
                if proc.poll() is not None:
                    pytest.fail(f"urbantwin exited during startup ({proc.returncode}):\n{srv.log_text()}")
                try:
                    if requests.get(f"{srv.base}/health", timeout=1).status_code == 200:
                        break
                except requests.RequestException:
                    pass
                if time.monotonic() > deadline:
                    pytest.fail(f"urbantwin did not answer /health within 30 s:\n{srv.log_text()}")
                time.sleep(0.05)
            yield srv
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture(scope="module")
def client(server):
    # the constructor probes GET /ngsi-ld/v1/entities?type=None&limit=0&count=true and raises if that fails
    c = Client(hostname="127.0.0.1", port=server.port, verbose=False)
    yield c
    c.close()


def air_quality(
    name: str, no2: float, at: datetime, *, etype="AirQualityObserved", lat=60.1699, lon=24.9384, poi="Helsinki:Kallio"
) -> Entity:
    e = Entity(etype, name, ctx=[CORE])
    e.prop("NO2", no2, unitcode="GP", observedat=at)
    e.prop("stationName", f"Station {name} – Kallio")
    e.gprop("location", (lat, lon))
    e.rel("refPointOfInterest", f"PointOfInterest:{poi}")
    e.tprop("dateObserved", at)
    return e


# --------------------------------------------------------------------------------------------------------------------


def test_connects_and_probe_succeeds(client, server):
    assert client.is_connected()
    # the exact probe ngsildclient sends at connect time
    r = requests.get(
        f"{server.base}/ngsi-ld/v1/entities",
        params={"type": "None", "limit": 0, "count": "true"},
        headers={"Accept": "application/json"},
        timeout=10,
    )
    assert r.status_code == 200
    assert r.json() == []
    assert r.headers["NGSILD-Results-Count"] == "0"


def test_create_get_roundtrip(client):
    e = air_quality("Helsinki-1", 22.5, T0)
    assert e.id == urn("AirQualityObserved", "Helsinki-1")
    assert client.create(e) is True
    assert client.exists(e)

    got = client.get("AirQualityObserved:Helsinki-1")
    assert got.id == e.id and got.type == "AirQualityObserved"
    assert got["NO2"]["type"] == "Property"
    assert got["NO2"]["value"] == 22.5
    assert got["NO2"]["unitCode"] == "GP"
    assert ts(got["NO2"]["observedAt"]) == T0
    assert got["stationName"]["value"] == "Station Helsinki-1 – Kallio"
    assert got["location"]["type"] == "GeoProperty"
    assert got["location"]["value"] == {"type": "Point", "coordinates": [24.9384, 60.1699]}
    assert got["refPointOfInterest"] == {
        "type": "Relationship",
        "object": "urn:ngsi-ld:PointOfInterest:Helsinki:Kallio",
    }
    assert got["dateObserved"]["value"]["@type"] == "DateTime"
    assert ts(got["dateObserved"]["value"]["@value"]) == T0

    # the raw API response is JSON-LD with a context, as ngsildclient's exists() relies on
    raw = client.get(e, asdict=True)
    assert "@context" in raw

    # creating it again is a conflict (ProblemDetails AlreadyExists), which ngsildclient maps to an exception
    with pytest.raises(Exception) as ex:
        client.create(air_quality("Helsinki-1", 1, T0))
    assert "409" in str(ex.value) or "lready" in str(ex.value)


def test_query_by_type_and_q(client):
    entities = [
        air_quality(
            f"Espoo-{i}", 10 * i, T0 + timedelta(minutes=i), etype="AirQualityEspoo", lat=60.25 + i / 64, poi=f"Espoo:{i}"
        )
        for i in range(1, 8)
    ]
    r = client.create(entities)
    assert r.ok and r.n_ok == 7, r

    assert client.count(type="AirQualityEspoo") == 7
    got = client.query(type="AirQualityEspoo")
    assert sorted(x.id for x in got) == sorted(e.id for e in entities)

    high = client.query(type="AirQualityEspoo", q="NO2>40")
    assert sorted(x["NO2"]["value"] for x in high) == [50, 60, 70]
    assert client.count(type="AirQualityEspoo", q="NO2>40") == 3

    # (a string with spaces in q: see test_q_string_with_spaces)
    by_name = client.query(type="AirQualityEspoo", q='stationName~=".*Espoo-3.*"')
    assert [x.id for x in by_name] == [urn("AirQualityEspoo", "Espoo-3")]

    by_rel = client.query(type="AirQualityEspoo", q='refPointOfInterest=="urn:ngsi-ld:PointOfInterest:Espoo:5"')
    assert [x.id for x in by_rel] == [urn("AirQualityEspoo", "Espoo-5")]

    # pagination as ngsildclient does it (count first, then pages of `limit`)
    paged = client.query(type="AirQualityEspoo", limit=3)
    assert len(paged) == 7 and len({x.id for x in paged}) == 7

    head = client.query_head(type="AirQualityEspoo", n=2)
    assert len(head) == 2

    assert "AirQualityEspoo" in client.types.list()


def test_batch_upsert_replace_and_update(client):
    n = 150  # more than ngsildclient's batch size (100): two batch requests
    first = [air_quality(f"Vantaa-{i}", float(i), T0, etype="AirQualityVantaa") for i in range(n)]
    r = client.upsert(first)
    assert r.ok and r.n_ok == n, r
    assert client.count(type="AirQualityVantaa") == n

    # replace (default): the new content replaces the old one, attributes not given are gone
    second = []
    for i in range(n):
        e = Entity("AirQualityVantaa", f"Vantaa-{i}", ctx=[CORE])
        e.prop("NO2", i + 0.25, observedat=T0 + timedelta(hours=1))
        second.append(e)
    r = client.upsert(second)
    assert r.ok and r.n_ok == n, r
    got = client.get(urn("AirQualityVantaa", "Vantaa-42"))
    assert got["NO2"]["value"] == 42.25
    assert ts(got["NO2"]["observedAt"]) == T0 + timedelta(hours=1)
    assert "stationName" not in got.root and "location" not in got.root

    # update mode: attributes are added or overwritten, the others stay
    third = []
    for i in range(n):
        e = Entity("AirQualityVantaa", f"Vantaa-{i}", ctx=[CORE])
        e.prop("PM10", i * 2)
        third.append(e)
    r = client.upsert(third, update=True)
    assert r.ok and r.n_ok == n, r
    got = client.get(urn("AirQualityVantaa", "Vantaa-42"))
    assert got["NO2"]["value"] == 42.25 and got["PM10"]["value"] == 84

    assert len(client.query(type="AirQualityVantaa", q="PM10>=200")) == n - 100

    # batch delete via the facade
    r = client.delete(first)
    assert r.ok and r.n_ok == n, r
    assert client.count(type="AirQualityVantaa") == 0


def test_update_attribute(client):
    e = air_quality("Tampere-1", 5, T0)
    assert client.create(e)

    # batch update of one attribute (a fragment: id, type and the attribute)
    frag = Entity("AirQualityObserved", "Tampere-1", ctx=[CORE])
    frag.prop("NO2", 6.5, unitcode="GP", observedat=T0 + timedelta(minutes=5))
    r = client.batch.update([frag])
    assert r.ok and r.n_ok == 1, r
    got = client.get(e)
    assert got["NO2"]["value"] == 6.5
    assert ts(got["NO2"]["observedAt"]) == T0 + timedelta(minutes=5)
    assert got["stationName"]["value"] == "Station Tampere-1 – Kallio"  # untouched

    # noOverwrite leaves an existing attribute alone but adds new ones
    frag2 = Entity("AirQualityObserved", "Tampere-1", ctx=[CORE])
    frag2.prop("NO2", 999).prop("O3", 41)
    r = client.batch.update([frag2], overwrite=False)
    assert r.ok, r
    got = client.get(e)
    assert got["NO2"]["value"] == 6.5 and got["O3"]["value"] == 41

    # updating an entity that does not exist is reported per entity (207)
    ghost = Entity("AirQualityObserved", "Nowhere", ctx=[CORE]).prop("NO2", 1)
    r = client.batch.update([ghost])
    assert not r.ok and r.n_err == 1

    # Client.update(entity): ngsildclient's single-entity update (exists, delete, create)
    whole = air_quality("Tampere-1", 7.75, T0 + timedelta(minutes=10))
    assert client.update(whole)
    got = client.get(e)
    assert got["NO2"]["value"] == 7.75 and "O3" not in got.root


def test_temporal_after_updates(client):
    name, etype = "Oulu-1", "AirQualityOulu"
    eid = urn(etype, name)
    values = [11, 12.5, 14, 9.25, 30]
    e = air_quality(name, values[0], T0, etype=etype)
    assert client.create(e)
    assert client.create(air_quality("Oulu-2", 100, T0, etype=etype))
    for i, v in enumerate(values[1:], start=1):
        frag = Entity(etype, name, ctx=[CORE])
        frag.prop("NO2", v, unitcode="GP", observedat=T0 + timedelta(minutes=i))
        r = client.batch.update([frag])
        assert r.ok, r

    expected = [(v, T0 + timedelta(minutes=i)) for i, v in enumerate(values)]

    # simplified temporal representation (options=temporalValues) of one entity
    troe = client.temporal.get(eid, attrs=["NO2"])
    assert troe["id"] == eid
    got = [(v, ts(t)) for v, t in troe["NO2"]["values"]]
    assert got == expected

    # normalized (verbose) form: one instance per value, with observedAt and unitCode kept
    troe = client.temporal.get(eid, attrs=["NO2"], verbose=True)
    inst = troe["NO2"]
    assert [(i["value"], ts(i["observedAt"])) for i in inst] == expected
    assert all(i["unitCode"] == "GP" for i in inst)

    # temporal query by type with timerel=between
    tq = TemporalQuery().between(T0 + timedelta(minutes=1), T0 + timedelta(minutes=4))
    res = client.temporal.query(type=etype, attrs=["NO2"], tq=tq, q="NO2<50")
    assert [t["id"] for t in res] == [eid]
    got = [(v, ts(t)) for v, t in res[0]["NO2"]["values"]]
    assert got == expected[1:4]  # between: [start, end)

    # timerel=after and lastN
    tq = TemporalQuery().after(T0 + timedelta(seconds=30))
    res = client.temporal.query(eid=eid, attrs=["NO2"], tq=tq, lastn=2)
    got = [(v, ts(t)) for v, t in res[0]["NO2"]["values"]]
    assert got == expected[-2:]

    # timerel=before
    tq = TemporalQuery().before(T0 + timedelta(minutes=2))
    res = client.temporal.query(eid=eid, attrs=["NO2"], tq=tq)
    got = [(v, ts(t)) for v, t in res[0]["NO2"]["values"]]
    assert got == expected[:2]


# --------------------------------------------------------------------------------------------------------------------
# behaviour ngsildclient (and other HTTP clients) depend on: trailing-slash paths, form-encoded spaces, exact floats


def test_trailing_slash_paths(server):
    h = {"Content-Type": "application/json"}
    r = requests.post(
        f"{server.base}/ngsi-ld/v1/entities/",
        json={"id": urn("SlashProbe", "1"), "type": "SlashProbe"},
        headers=h,
        timeout=10,
    )
    assert r.status_code == 201, r.text
    r = requests.post(
        f"{server.base}/ngsi-ld/v1/entityOperations/upsert/",
        json=[{"id": urn("SlashProbe", "2"), "type": "SlashProbe"}],
        headers=h,
        timeout=10,
    )
    assert r.status_code in (201, 204), r.text


def test_q_string_with_spaces(client):
    e = air_quality("Lahti-1", 3, T0, etype="AirQualityLahti")
    assert client.create(e)
    got = client.query(type="AirQualityLahti", q='stationName=="Station Lahti-1 – Kallio"')
    assert [x.id for x in got] == [e.id]


def test_float_values_roundtrip_exactly(client):
    values = [25.000999999999998, 0.1 + 0.2, 1e-7 * 3, 123456.789012345678, -0.000123456789]
    e = Entity("FloatProbe", "1", ctx=[CORE])
    for i, v in enumerate(values):
        e.prop(f"v{i}", v)
    assert client.create(e)
    got = client.get(e)
    assert [got[f"v{i}"]["value"] for i in range(len(values))] == values

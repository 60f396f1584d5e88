"""The pure rules of the expert draw: request checks, exclusion, locality, the draw and its verification."""

from __future__ import annotations

import hashlib
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evaluation import draw_rules as R
from tests.factories import make_uscc

TENDERER, AGENCY, BIDDER, OTHER, EXCLUDED = (make_uscc(n) for n in range(700001, 700006))
PARTIES = R.Parties(tenderer_uscc=TENDERER, agency_uscc=AGENCY, bidder_usccs=frozenset({BIDDER}),
                    excluded_usccs=frozenset({EXCLUDED}), frequency_cap=3)


def terms(**overrides) -> R.RequestTerms:
    values = {"specialties": (("A010101", 3), ("B020202", 2)), "committee_size": 5}
    values.update(overrides)
    return R.RequestTerms(**values)


@pytest.mark.parametrize(("overrides", "fields"), [
    ({}, []),
    ({"committee_size": 7, "tenderer_representatives": 2}, []),
    ({"committee_size": 4, "specialties": (("A010101", 4),)}, ["committee_size"]),
    ({"committee_size": 3, "specialties": (("A010101", 3),)}, ["committee_size"]),
    ({"committee_size": 6, "specialties": (("A010101", 6),)}, ["committee_size"]),
    ({"committee_size": 5, "tenderer_representatives": 2, "specialties": (("A010101", 3),)},
     ["tenderer_representatives"]),
    ({"committee_size": 7, "tenderer_representatives": 3, "specialties": (("A010101", 4),)},
     ["tenderer_representatives"]),
    ({"specialties": (("A010101", 3),)}, ["specialties"]),
    ({"specialties": ()}, ["specialties"]),
    ({"specialties": (("a-1", 3), ("B020202", 2))}, ["specialties"]),
    ({"specialties": (("A010101", 3), ("A010101", 2))}, ["specialties"]),
    ({"specialties": (("A010101", 5), ("B020202", 0))}, ["specialties"]),
    ({"alternates": 11}, ["alternates"]),
    ({"alternates": -1}, ["alternates"]),
    ({"host_region": "3702"}, ["host_region"]),
    ({"local_cap": 2}, ["host_region"]),
    ({"local_cap": 6, "host_region": "370200"}, ["local_cap"]),
    ({"local_cap": 0, "host_region": "370200"}, []),
    ({"frequency_cap": 0}, ["frequency_cap"]),
    ({"excluded_usccs": (TENDERER[:-1] + ("0" if TENDERER[-1] != "0" else "1"),)}, ["excluded_usccs"]),
    ({"venues": ("",)}, ["venues"]),
])
def test_request_rules(overrides, fields):
    assert sorted({p.field for p in R.check_request(terms(**overrides))}) == sorted(fields)


def test_refusal_says_what_to_do():
    [problem] = R.check_request(terms(committee_size=5, tenderer_representatives=2,
                                      specialties=(("A010101", 3),)))
    assert "at most 1 may be tenderer representatives" in str(problem.message)


def expert(**overrides) -> R.ExpertFacts:
    values = {"code": "E1", "specialties": ("A010101",), "region": "110101", "employer_uscc": OTHER}
    values.update(overrides)
    return R.ExpertFacts(**values)


@pytest.mark.parametrize(("overrides", "reasons"), [
    ({}, []),
    ({"employer_uscc": TENDERER}, ["employer_is_tenderer"]),
    ({"employer_uscc": AGENCY}, ["employer_is_agency"]),
    ({"employer_uscc": BIDDER}, ["employer_is_bidder"]),
    ({"avoidance_usccs": (BIDDER,)}, ["avoidance_is_party"]),
    ({"avoidance_usccs": (TENDERER,)}, ["avoidance_is_party"]),
    ({"avoidance_usccs": (OTHER,)}, []),
    ({"employer_uscc": EXCLUDED}, ["excluded_unit"]),
    ({"avoidance_usccs": (EXCLUDED,)}, ["excluded_unit"]),
    ({"is_penalised": True}, ["penalised"]),
    ({"is_supervision_staff": True}, ["supervision_staff"]),
    ({"is_available": False}, ["unavailable"]),
    ({"specialties": ("C030303",)}, ["no_specialty"]),
    ({"draws_for_tenderer": 2}, []),
    ({"draws_for_tenderer": 3}, ["frequency_cap"]),
    ({"employer_uscc": None}, []),
    ({"employer_uscc": BIDDER, "is_penalised": True, "is_available": False},
     ["employer_is_bidder", "penalised", "unavailable"]),
])
def test_exclusion_reasons(overrides, reasons):
    assert R.exclusion_reasons(expert(**overrides), PARTIES, ["A010101", "B020202"]) == reasons


def test_bidders_unknown_before_the_deadline_are_not_a_reason_yet():
    before = R.Parties(tenderer_uscc=TENDERER)
    assert R.exclusion_reasons(expert(employer_uscc=BIDDER), before, ["A010101"]) == []
    assert R.conflict_reasons(expert(employer_uscc=BIDDER), PARTIES) == ["employer_is_bidder"]


@pytest.mark.parametrize(("region", "host", "local"), [
    ("370202", "370200", True), ("370200", "370200", True), ("370101", "370200", False),
    ("370101", "370000", True), ("110101", "370000", False), ("370202", "370202", True),
    ("370203", "370202", False), ("370202", None, False), (None, "370200", False),
])
def test_is_local(region, host, local):
    assert R.is_local(region, host) is local


def test_uniform_below_rejects_words_that_would_bias():
    limit = (1 << 64) - (1 << 64) % 3
    words = iter([limit, limit + 1, (1 << 64) - 1, 7])
    assert R.uniform_below(words, 3) == 7 % 3


def test_uniform_below_covers_the_range_evenly():
    words = R._words(b"k" * 32, "A")
    counts = [0] * 5
    for _ in range(5000):
        counts[R.uniform_below(words, 5)] += 1
    assert all(900 < c < 1100 for c in counts)


CANDIDATES = {"specialties": {"A010101": [f"E{i:02d}" for i in range(10)],
                              "B020202": [f"E{i:02d}" for i in range(5, 15)]},
              "local": ["E00", "E01", "E02", "E05", "E06"], "local_cap": 1}
WANTED = {"A010101": {"count": 3, "alternates": 2}, "B020202": {"count": 2, "alternates": 2}}


def test_same_seed_and_list_give_the_same_committee():
    seed = bytes(range(32))
    first = R.draw_committee(seed, "ab" * 32, "T1", 1, CANDIDATES, WANTED)
    assert R.draw_committee(seed, "ab" * 32, "T1", 1, CANDIDATES, WANTED) == first
    others = {R.canonical(R.draw_committee(bytes([i]) * 32, "ab" * 32, "T1", 1, CANDIDATES, WANTED))
              for i in range(8)}
    assert len(others) > 1  # the seed matters
    assert R.draw_committee(seed, "cd" * 32, "T1", 1, CANDIDATES, WANTED) != first or \
        R.draw_committee(seed, "ef" * 32, "T1", 1, CANDIDATES, WANTED) != first  # so does the beacon


def test_draw_honours_the_local_cap_and_seats_each_expert_once():
    for i in range(30):
        result = R.draw_committee(hashlib.sha256(bytes([i])).digest(), None, "T1", 1, CANDIDATES, WANTED)
        drawn = [c for part in result.values() for c in part["members"] + part["alternates"]]
        assert len(drawn) == len(set(drawn))
        assert len(set(drawn) & set(CANDIDATES["local"])) <= 1
        assert [len(result[c]["members"]) for c in sorted(WANTED)] == [3, 2]


def test_shortfall_when_candidates_run_out():
    small = {"specialties": {"A010101": ["E1", "E2"]}, "local": [], "local_cap": None}
    result = R.draw_committee(b"s" * 32, None, "T", 1, small, {"A010101": {"count": 3, "alternates": 1}})
    assert sorted(result["A010101"]["members"]) == ["E1", "E2"] and result["A010101"]["alternates"] == []
    assert R.shortfall(result, {"A010101": {"count": 3, "alternates": 1}}) == {"A010101": 1}


facts = st.builds(
    R.ExpertFacts,
    code=st.just(""), specialties=st.lists(st.sampled_from(["A1", "B2", "C3"]), min_size=1, max_size=3,
                                           unique=True).map(tuple),
    region=st.sampled_from(["370202", "370101", "110101"]),
    employer_uscc=st.sampled_from([TENDERER, AGENCY, BIDDER, OTHER, EXCLUDED, None]),
    avoidance_usccs=st.lists(st.sampled_from([TENDERER, BIDDER, OTHER, EXCLUDED]), max_size=2).map(tuple),
    is_available=st.booleans(), is_penalised=st.booleans(), is_supervision_staff=st.booleans(),
    draws_for_tenderer=st.integers(0, 4))


@settings(max_examples=150, deadline=None)
@given(pool=st.lists(facts, min_size=1, max_size=40),
       wanted=st.dictionaries(st.sampled_from(["A1", "B2", "C3"]),
                              st.tuples(st.integers(1, 4), st.integers(0, 3)), min_size=1),
       cap=st.one_of(st.none(), st.integers(0, 3)), seed=st.binary(min_size=32, max_size=32),
       drawn_before=st.sets(st.integers(0, 39), max_size=5))
def test_no_excluded_expert_is_ever_drawn(pool, wanted, cap, seed, drawn_before):
    experts = [R.ExpertFacts(**{**f.__dict__, "code": f"E{i:03d}"}) for i, f in enumerate(pool)]
    want = {code: {"count": n, "alternates": a} for code, (n, a) in wanted.items()}
    already = [f"E{i:03d}" for i in drawn_before]
    candidates, excluded = R.freeze_candidates(experts, PARTIES, want, host_region="370200", local_cap=cap,
                                               already_drawn=already)
    result = R.draw_committee(seed, None, "T-1", 1, candidates, want)
    drawn = [c for part in result.values() for c in part["members"] + part["alternates"]]
    by_code = {e.code: e for e in experts}
    assert len(drawn) == len(set(drawn))
    excluded_codes = {e["code"] for e in excluded}
    for code in drawn:
        assert code not in excluded_codes and code not in already
        assert R.exclusion_reasons(by_code[code], PARTIES, want) == []
    for spec, part in result.items():
        assert all(spec in by_code[c].specialties for c in part["members"] + part["alternates"])
    if cap is not None:
        assert sum(R.is_local(by_code[c].region, "370200") for c in drawn) <= cap


def round_fixture() -> tuple[dict, dict, dict]:
    seed = bytes(range(32))
    result = R.draw_committee(seed, "ab" * 32, "T1", 1, CANDIDATES, WANTED)
    rnd = {"number": 1, "wanted": WANTED, "candidates": CANDIDATES,
           "candidates_sha256": R.sha256_hex(R.canonical(CANDIDATES)), "seed_commitment": R.sha256_hex(seed),
           "seed": seed.hex(), "beacon": "ab" * 32, "result": result, "commit_log_index": 3, "reveal_log_index": 5}
    commit = {"kind": "draw.commit", "tender": "T1", "round": 1, "commitment": rnd["seed_commitment"],
              "candidates_sha256": rnd["candidates_sha256"], "wanted": R.wanted_text(WANTED)}
    reveal = {"kind": "draw.reveal", "tender": "T1", "round": 1, "commitment": rnd["seed_commitment"],
              "seed": rnd["seed"], "beacon": "ab" * 32, "result_sha256": R.sha256_hex(R.canonical(result))}
    return rnd, commit, reveal


def test_check_round_accepts_an_honest_round():
    rnd, commit, reveal = round_fixture()
    assert R.check_round("T1", rnd, commit, reveal).ok


@pytest.mark.parametrize("change", [
    lambda r, c, v: r.update(seed="00" * 32),
    lambda r, c, v: r.update(beacon="cd" * 32),
    lambda r, c, v: r["candidates"]["specialties"].update(A010101=["E00"]),
    lambda r, c, v: r.update(result={**r["result"], "A010101": {"members": ["E09"], "alternates": []}}),
    lambda r, c, v: r.update(commit_log_index=6),
    lambda r, c, v: c.update(commitment="00" * 32),
    lambda r, c, v: c.update(wanted="A010101:9+2"),
    lambda r, c, v: v.update(seed="11" * 32),
    lambda r, c, v: r.pop("seed"),
    lambda r, c, v: r.update(seed="zz"),
])
def test_check_round_reports_every_tampering(change):
    rnd, commit, reveal = round_fixture()
    rnd = {**rnd, "candidates": {**rnd["candidates"], "specialties": dict(rnd["candidates"]["specialties"])}}
    change(rnd, commit, reveal)
    assert not R.check_round("T1", rnd, commit, reveal).ok


def test_check_round_without_log_entries_fails():
    rnd, _commit, _reveal = round_fixture()
    check = R.check_round("T1", rnd, None, None)
    assert len(check.problems) == 2


def test_wanted_text_is_short_and_sorted():
    assert R.wanted_text({"B2": {"count": 2, "alternates": 1}, "A1": {"count": 3, "alternates": 2}}) == "A1:3+2;B2:2+1"
    assert list(itertools.islice(R._words(b"k" * 32, "A"), 2)) == list(itertools.islice(R._words(b"k" * 32, "A"), 2))

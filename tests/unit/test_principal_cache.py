"""PrincipalCache: how long a resolved token is trusted, and what makes it forget."""

from __future__ import annotations

from bourse.domain.identity import Principal, Role
from bourse.domain.values import UserId
from bourse.service.principal_cache import PrincipalCache

ALICE = Principal.of(UserId(100001), "alice", frozenset({Role.TRADER}), "jti-a")
BOB = Principal.of(UserId(100002), "bob", frozenset({Role.TRADER}), "jti-b")


def test_an_entry_lives_between_half_the_ttl_and_the_ttl_and_never_past_the_token_expiry() -> None:
    cache = PrincipalCache(ttl=2.0)
    cache.put("a", ALICE, now=100.0, expires_at=1000.0, generation=cache.generation)
    cache.put("b", BOB, now=100.0, expires_at=100.5, generation=cache.generation)
    assert cache.get("a", 100.99) == ALICE
    assert cache.get("b", 100.49) == BOB
    assert cache.get("b", 100.5) is None  # the token expired: it is decoded again and refused
    assert cache.get("a", 102.0) is None
    assert cache.get("a", 100.0) is None  # dropped once stale, not revived


def test_entries_put_together_do_not_all_expire_together() -> None:
    cache = PrincipalCache(ttl=2.0)
    for i in range(200):
        cache.put(f"t{i}", ALICE, now=0.0, expires_at=60.0, generation=cache.generation)
    alive = sum(cache.get(f"t{i}", 1.5) is not None for i in range(200))
    assert 0 < alive < 200


def test_forgetting_a_user_drops_all_their_tokens_only() -> None:
    cache = PrincipalCache()
    for token in ("a1", "a2"):
        cache.put(token, ALICE, now=0.0, expires_at=60.0, generation=cache.generation)
    cache.put("b", BOB, now=0.0, expires_at=60.0, generation=cache.generation)
    cache.forget_user(ALICE.uid)
    assert cache.get("a1", 1.0) is None and cache.get("a2", 1.0) is None
    assert cache.get("b", 1.0) == BOB


def test_a_lookup_that_read_before_a_change_does_not_cache_its_answer() -> None:
    cache = PrincipalCache()
    taken = cache.generation  # a request starts reading the database ...
    cache.forget_user(ALICE.uid)  # ... a logout commits meanwhile ...
    cache.put("a", ALICE, now=0.0, expires_at=60.0, generation=taken)  # ... the stale answer arrives
    assert cache.get("a", 1.0) is None
    cache.put("a", ALICE, now=0.0, expires_at=60.0, generation=cache.generation)
    assert cache.get("a", 1.0) == ALICE


def test_a_full_cache_starts_over_and_a_zero_ttl_caches_nothing() -> None:
    cache = PrincipalCache(max_entries=2)
    for token in ("a", "b", "c"):
        cache.put(token, ALICE, now=0.0, expires_at=60.0, generation=cache.generation)
    assert cache.get("a", 1.0) is None and cache.get("c", 1.0) == ALICE
    off = PrincipalCache(ttl=0)
    off.put("a", ALICE, now=0.0, expires_at=60.0, generation=off.generation)
    assert off.get("a", 0.0) is None


def test_forgetting_all_drops_every_entry_and_refuses_answers_read_before() -> None:
    cache = PrincipalCache()
    cache.put("a", ALICE, now=0.0, expires_at=60.0, generation=cache.generation)
    taken = cache.generation
    cache.forget_all()  # the security epoch moved
    assert cache.get("a", 1.0) is None
    cache.put("b", BOB, now=0.0, expires_at=60.0, generation=taken)
    assert cache.get("b", 1.0) is None

"""Password hashes: argon2id at the configured cost; a hash made at another cost still verifies."""

from __future__ import annotations

from tidings.pkg.passwords import Argon2Hasher


async def test_hashes_carry_the_configured_cost_and_any_cost_verifies() -> None:
    cheap, default = Argon2Hasher(time_cost=1, memory_kib=8192), Argon2Hasher()
    cheap_hash, default_hash = await cheap.hash("correct horse"), await default.hash("correct horse")
    assert cheap_hash.startswith("$argon2id$v=19$m=8192,t=1,")
    assert default_hash.startswith("$argon2id$v=19$m=65536,t=3,")
    assert await default.verify(cheap_hash, "correct horse")
    assert await cheap.verify(default_hash, "correct horse")
    assert not await cheap.verify(cheap_hash, "wrong horse")
    assert not await cheap.verify("not a hash", "correct horse")

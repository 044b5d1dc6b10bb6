"""``Script``: a Redis Lua script called by EVALSHA in pipelines, at one round trip a pipeline.

Written by hand because redis-py's own pipelined scripts (``register_script(...)(client=pipe)``) send SCRIPT EXISTS
before every pipeline that holds one: a round trip more each time, on every hot path that batches through a
script (seq blocks, rate limits, recent windows). Here the pipeline goes as it is; only after Redis forgot the
script (a restart, SCRIPT FLUSH) is it loaded and the pipeline run again, so a pipeline given to ``run`` must be
safe to run twice (idempotent commands, or scripts that answered NOSCRIPT and so did nothing).

On a Redis Cluster the client is a ``RedisCluster`` (``tidings.pkg.rediscluster``): each call goes to the master of
its first key's slot (so all the keys of one call must share a slot), the pipeline to every node at once, and
SCRIPT LOAD to every primary, so a master that forgot the script (restarted, promoted) has it for the second run.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from redis.exceptions import NoScriptError

if TYPE_CHECKING:
    import redis.asyncio as redis
    from redis.asyncio.client import Pipeline


class Script:
    def __init__(self, client: redis.Redis, source: str) -> None:
        self._client = client
        self._source = source
        # The digest Redis names it by (what SCRIPT LOAD answers), computed as redis-py does.
        self.sha = client.register_script(source).sha

    def call(self, pipe: Pipeline, keys: Sequence[str], args: Sequence[Any]) -> None:
        """Queue one run of the script on ``pipe``; its answer is the pipeline's answer at that position."""
        pipe.evalsha(self.sha, len(keys), *keys, *args)

    async def run(self, fill: Callable[[Pipeline], None], *, raise_on_error: bool = True) -> list[Any]:
        """The answers of a pipeline that ``fill`` queues (script calls and other commands) in one round trip.
        With ``raise_on_error=False`` a failed command's answer is its exception, as in ``Pipeline.execute``."""
        for attempt in range(2):
            try:
                async with self._client.pipeline(transaction=False) as pipe:
                    fill(pipe)
                    answers = list(await pipe.execute(raise_on_error=raise_on_error))
            except NoScriptError:
                if attempt:
                    raise
            else:
                if attempt or not any(isinstance(answer, NoScriptError) for answer in answers):
                    return answers
            await self._client.script_load(self._source)
        raise AssertionError("unreachable")

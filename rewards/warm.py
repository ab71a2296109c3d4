"""Imported by the forkserver: loads math-verify and runs one grade, so every worker forked from it
starts warm (a cold start costs seconds of imports and parser construction per worker)."""

from rewards.equivalence import warm_up

warm_up()

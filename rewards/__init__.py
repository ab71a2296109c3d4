"""Rule-based math rewards for GRPO: answer extraction, equivalence in a hard-timeout process pool,
the reward registry, and ``python -m stagerl.rewards.score`` for offline scoring.

>>> from stagerl.rewards import grade, extract_answer
>>> extract_answer("the final answer is 5 + 77 = 122")
'122'
"""

from stagerl.rewards.accuracy import accuracy, get_pool, grade
from stagerl.rewards.extract import extract_answer
from stagerl.rewards.pool import GradingPool
from stagerl.rewards.registry import REWARDS, build_reward_funcs

__all__ = ["REWARDS", "GradingPool", "accuracy", "build_reward_funcs", "extract_answer", "get_pool", "grade"]

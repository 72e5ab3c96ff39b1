"""Learning participants: a storage owner's bidding as a Gymnasium
environment, a tabular Q-learner, and what better information is worth.

A room above the simulation and the analysis (it builds its markets from a
scenario's community and draws its report with the analysis' page and
charts) and below the faces: nothing but the command line imports it. The
environment needs the ``rl`` extra (gymnasium), the stable-baselines3 adapter
the ``sb3`` extra.
"""

from transactive._lazy import attach

_EXPORTS = {
    "ActionGrid": "transactive.rl.qlearning",
    "BiddingEnv": "transactive.rl.env",
    "CommunityRivals": "transactive.rl.rivals",
    "Design": "transactive.rl.rivals",
    "Discretiser": "transactive.rl.qlearning",
    "InformationResult": "transactive.rl.information",
    "LearnResult": "transactive.rl.learn",
    "PriceSchedule": "transactive.rl.rivals",
    "QLearner": "transactive.rl.qlearning",
    "StorageBidders": "transactive.rl.bidding",
    "information_gap": "transactive.rl.information",
    "learn": "transactive.rl.learn",
    "sb3_policy": "transactive.rl.sb3",
    "train_sb3": "transactive.rl.sb3",
}
__getattr__, __dir__, __all__ = attach(__name__, _EXPORTS)

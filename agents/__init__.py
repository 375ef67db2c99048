"""Policies and learners: the paper's policy network as a d3rlpy encoder, the algorithm
registry, training and evaluation on the splits (see the agents issue; empty until then)."""

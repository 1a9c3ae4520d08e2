"""Framework integrations of the training guard, one module per framework.

Each module imports its framework, so none is imported here: import the one you use,
e.g. ``from hindsight.training.integrations.torch import watch``.
"""

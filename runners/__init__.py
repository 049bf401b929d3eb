"""The three process programs: ``python -m runners.gateway|strategy|executor --config FILE``."""

"""Start, watch and restart the runners; serve health and metrics."""

from workbench.supervisor.supervisor import RunnerState, Supervisor, SupervisorEvent

__all__ = ["RunnerState", "Supervisor", "SupervisorEvent"]

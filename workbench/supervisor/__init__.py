"""Start, watch and restart the runners; serve health and metrics."""

from workbench.supervisor.run_folder import prepare_run_folder
from workbench.supervisor.status import RunnerState, RunnerStatus, SupervisorEvent
from workbench.supervisor.supervisor import Supervisor

__all__ = ["RunnerState", "RunnerStatus", "Supervisor", "SupervisorEvent", "prepare_run_folder"]

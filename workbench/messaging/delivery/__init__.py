"""Reliable delivery: windows, acknowledgements and re-sends, as small pure objects.

Two legs of the pipeline must not lose what they carry, and both are driven by
the objects here; the runners only move bytes and call them with the time.

- **gateway -> strategy (replay).** `CreditWindow` is the gateway's side: it
  numbers flow-control marks, keeps what each subscriber has acknowledged
  (`Ack` of a mark), bounds the batches in flight and retains the batches a
  restarted subscriber may ask for again (`Resync`). `Rejoin` is a
  subscriber's side of that request, `StreamEnd` its way out after the end.
- **strategy -> executor (always).** `Outbox` is the strategy's side: every
  signal stays in it, saved with the strategy's state before it is sent, until
  the executor acknowledges it (`Ack` of a signal seq); what stays
  unacknowledged is sent again, ever less often. `InboundSequence` is the
  executor's side: it puts one strategy's signals back in seq order, says what
  may be acknowledged (everything up to the first hole), and reports a hole no
  re-send filled within ``gap_timeout_s``. A hole it gives up on is listed in
  its acks as missing, so the strategy keeps those signals and sends them again.

Nothing here touches a socket, a file or a clock: times are passed in, so the
unit tests drive every path with a fake clock.
"""

from workbench.messaging.delivery.inbound import Gap, InboundSequence
from workbench.messaging.delivery.outbox import Outbox
from workbench.messaging.delivery.stream_end import StreamEnd
from workbench.messaging.delivery.window import CreditWindow, Rejoin

__all__ = ["CreditWindow", "Gap", "InboundSequence", "Outbox", "Rejoin", "StreamEnd"]

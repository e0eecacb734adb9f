from __future__ import annotations

import signal
from types import FrameType
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from intents.dispatch import Dispatcher


class Command(BaseCommand):
    help = "Claim due intents and hand them to the django-q2 workers (any number may run)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--batch-size", type=int, default=None)
        parser.add_argument("--worker-id", default=None)

    def handle(self, *args: Any, **options: Any) -> None:
        if options["batch_size"] is not None and not 1 <= options["batch_size"] <= 1000:
            raise CommandError("--batch-size must be between 1 and 1000")
        dispatcher = Dispatcher(worker_id=options["worker_id"], batch_size=options["batch_size"])

        def stop(signum: int, frame: FrameType | None) -> None:
            dispatcher.stop_event.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        self.stdout.write(f"dispatcher {dispatcher.worker_id} running; Ctrl-C stops it")
        dispatcher.run()

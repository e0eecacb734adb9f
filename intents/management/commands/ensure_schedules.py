from __future__ import annotations

from importlib import import_module
from importlib.util import find_spec
from typing import Any

from django.apps import apps
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create or update every app's django-q2 schedules (each app's schedules.py)."

    def handle(self, *args: Any, **options: Any) -> None:
        for config in apps.get_app_configs():
            module_name = f"{config.name}.schedules"
            if find_spec(module_name) is None:
                continue
            names = import_module(module_name).ensure_schedules()
            for name in names or []:
                self.stdout.write(f"schedule: {name}")

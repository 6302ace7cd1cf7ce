"""What a developer's machine and the tests need beside the platform, never shipped in an image:
installing and starting the local infrastructure (``infra``: RabbitMQ from Debian's package,
SeaweedFS from PyPI), the process supervisor of ``make run`` and the tests (``devstack``,
``platform``), the test harness (``harness``), the pytest plugin and fakes (``testing``) and the
fuzzing strategies (``fuzzing``). Production code (``motcua`` and the services) never imports it
(import-linter)."""

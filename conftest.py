"""The platform's pytest plugin (``motcua_dev.testing``) for every test directory: one test run starts
at most one SeaweedFS (or reuses the S3 service answering on MOTCUA_S3_ENDPOINT), checks RabbitMQ
once, and gives each test module a private vhost."""

pytest_plugins = ["motcua_dev.testing"]

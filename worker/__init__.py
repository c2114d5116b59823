"""Celery workers: the app (`worker.app`), the enqueue API (`worker.api`, torch-free), the
tasks and their runners, the lease and the reconciler. See docs/architecture.md, section 3.
"""

"""Outgoing mail adapters: the SMTP sender, the development outbox writer, and the
Jinja2 templates. Imports domain models and errors only; the queue and its drainer
are a service (``authgate.services.mail_delivery``)."""

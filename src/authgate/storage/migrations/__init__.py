"""Alembic migrations, and the error a data migration raises to stop for the operator."""


class MigrationRefused(Exception):
    """A data migration found rows it cannot carry over without a person's decision.

    Nothing was changed (the migration's transaction rolls back); the message names
    the rows and says what to do. The CLI prints it as one line, without a traceback.
    """

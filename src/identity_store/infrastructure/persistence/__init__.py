"""PostgreSQL adapters of the domain ports, over the sqlc-generated queries."""

from identity_store.infrastructure.persistence.event_repo import PostgresEventRepository
from identity_store.infrastructure.persistence.read_unit_of_work import PostgresReadUnitOfWork
from identity_store.infrastructure.persistence.subscription_repo import (
    PostgresSubscriptionRepository,
)
from identity_store.infrastructure.persistence.token_repo import PostgresTokenRepository
from identity_store.infrastructure.persistence.unit_of_work import (
    IsolationLevel,
    PostgresUnitOfWork,
    get_uow,
)
from identity_store.infrastructure.persistence.user_repo import PostgresUserRepository

__all__ = [
    "IsolationLevel",
    "PostgresEventRepository",
    "PostgresReadUnitOfWork",
    "PostgresSubscriptionRepository",
    "PostgresTokenRepository",
    "PostgresUnitOfWork",
    "PostgresUserRepository",
    "get_uow",
]

"""identity-store: PostgreSQL persistence for users, their tokens and an event log.

::

    from identity_store import NewUser, PostgresUnitOfWork, create_pool

    pool = await create_pool()  # DATABASE_URL from the environment
    async with PostgresUnitOfWork(pool) as uow:
        user = await uow.users.register(NewUser(email="ada@example.com", display_name="Ada"))
"""

from identity_store.domain.clock import Clock, utc_now
from identity_store.domain.errors import (
    CommitOutcomeUnknown,
    ConcurrencyConflict,
    ConstraintViolation,
    DatabaseConfigError,
    DatabaseError,
    DatabaseTimeout,
    DatabaseUnavailable,
    EmailAlreadyRegistered,
    EventKeyConflict,
    IdentityStoreError,
    InvalidInput,
    TokenInvalid,
    TransactionConflict,
    UnitOfWorkError,
    UserNotFound,
)
from identity_store.domain.models import (
    SINGLE_USE_TOKEN_KINDS,
    Event,
    EventPage,
    IssuedToken,
    NewEvent,
    NewToken,
    NewUser,
    Token,
    TokenKind,
    User,
    UserPage,
    UserStatus,
    UserUpdate,
)
from identity_store.domain.ports import (
    EventRepository,
    TokenRepository,
    UnitOfWork,
    UserRepository,
)
from identity_store.infrastructure.db import (
    Settings,
    check_health,
    create_pool,
    get_db,
    instrument_pool,
)
from identity_store.infrastructure.persistence import (
    PostgresEventRepository,
    PostgresTokenRepository,
    PostgresUnitOfWork,
    PostgresUserRepository,
    get_uow,
)

__all__ = [
    "SINGLE_USE_TOKEN_KINDS",
    "Clock",
    "CommitOutcomeUnknown",
    "ConcurrencyConflict",
    "ConstraintViolation",
    "DatabaseConfigError",
    "DatabaseError",
    "DatabaseTimeout",
    "DatabaseUnavailable",
    "EmailAlreadyRegistered",
    "Event",
    "EventKeyConflict",
    "EventPage",
    "EventRepository",
    "IdentityStoreError",
    "InvalidInput",
    "IssuedToken",
    "NewEvent",
    "NewToken",
    "NewUser",
    "PostgresEventRepository",
    "PostgresTokenRepository",
    "PostgresUnitOfWork",
    "PostgresUserRepository",
    "Settings",
    "Token",
    "TokenInvalid",
    "TokenKind",
    "TokenRepository",
    "TransactionConflict",
    "UnitOfWork",
    "UnitOfWorkError",
    "User",
    "UserNotFound",
    "UserPage",
    "UserRepository",
    "UserStatus",
    "UserUpdate",
    "check_health",
    "create_pool",
    "get_db",
    "get_uow",
    "instrument_pool",
    "utc_now",
]

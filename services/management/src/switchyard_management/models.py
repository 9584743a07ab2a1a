"""The system of record's tables, as SQLAlchemy 2 declarative models.

Every table hangs off :class:`Base`; its ``metadata`` is what Alembic migrations are written
against. The schema itself is owned by the migrations in ``migrations/versions/``: a change here
ships with a new revision, never with ``create_all``.

Conventions, so PostgreSQL and SQLite behave the same:

- times are :class:`UTCDateTime`: timezone-aware UTC in Python, ``timestamptz`` on PostgreSQL and
  naive-UTC text on SQLite (which has no time zone type), so ordering and comparisons agree;
- money is :data:`Money`, an exact decimal on PostgreSQL (see its comment);
- constraints and indexes carry explicit names (``NAMING_CONVENTION``) so later migrations can
  refer to them on both engines.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.sql.naming import conv

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """A point in time, always timezone-aware UTC on the Python side.

    Binding a naive datetime is a programming error (its zone is unknown) and raises. PostgreSQL
    stores ``timestamptz``; SQLite stores the naive UTC value, so every row uses the same text
    form and string order equals time order.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("naive datetime bound to a UTCDateTime column; attach a time zone")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# Money: NUMERIC(20, 12) rather than a float column. Spend is summed into budgets and reports;
# PostgreSQL sums NUMERIC exactly, where adding millions of doubles drifts, and per-token prices
# (down to ~1e-8 dollars per token) need the 12 decimal places. 8 integer digits allow a single
# row of up to $99,999,999. The wire format is a double, so values come back as float
# (asdecimal=False); SQLite has no decimal type and keeps them as REAL, which is what the
# embedded single-node setup needs. Negative amounts are refused by a CHECK constraint.
Money = Numeric(20, 12, asdecimal=False)


class Base(DeclarativeBase):
    """Root of every model; its metadata is the migrations' target."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({_primary_key_text(self)})"


def _primary_key_text(row: Any) -> str:
    columns = row.__table__.primary_key.columns
    return ", ".join(f"{c.key}={getattr(row, c.key)!r}" for c in columns)


class SpendLog(Base):
    """One finished request and what it cost; written once, idempotent by ``request_id``.

    Rows are listed newest first by ``(start_time, request_id)``, overall or for one key; both
    orders have an index ending in ``request_id`` so keyset pagination is an index range scan.
    """

    __tablename__ = "spend_logs"

    request_id: Mapped[str] = mapped_column(String, primary_key=True)
    key_hash: Mapped[str] = mapped_column(String, default="")
    """SHA-256 hex digest of the caller's key; never the key."""
    team_id: Mapped[str] = mapped_column(String, default="")
    user_id: Mapped[str] = mapped_column(String, default="")
    end_user: Mapped[str] = mapped_column(String, default="")
    organization_id: Mapped[str] = mapped_column(String, default="")
    model_group: Mapped[str] = mapped_column(String, default="")
    deployment_id: Mapped[str] = mapped_column(String, default="")
    model: Mapped[str] = mapped_column(String, default="")
    provider: Mapped[str] = mapped_column(String, default="")
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)
    total_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cost: Mapped[float] = mapped_column(Money, default=0.0)
    """US dollars."""
    latency_ms: Mapped[float] = mapped_column(Float, default=0.0)
    status: Mapped[str] = mapped_column(String, default="")
    """"success" or an error reason."""
    operation: Mapped[str] = mapped_column(String, default="")
    start_time: Mapped[datetime] = mapped_column(UTCDateTime)
    end_time: Mapped[datetime] = mapped_column(UTCDateTime)
    cache_hit: Mapped[bool] = mapped_column(Boolean, default=False)

    __table_args__ = (
        CheckConstraint("cost >= 0", name="cost_non_negative"),
        CheckConstraint(
            "prompt_tokens >= 0 AND completion_tokens >= 0 AND total_tokens >= 0", name="tokens_non_negative"
        ),
        Index("ix_spend_logs_start_time_request_id", "start_time", "request_id"),
        Index("ix_spend_logs_key_hash_start_time_request_id", "key_hash", "start_time", "request_id"),
    )


class VirtualKey(Base):
    """A virtual key's settings, identified by the SHA-256 hex digest of its secret.

    The secret itself is never stored: it is shown once, when the key is created or regenerated.
    ``role`` is the lower-case name of an ``auth.v1.PrincipalRole`` without its prefix
    (``"proxy_admin"``, ``"internal_user"``, ...), so rows read the same in any SQL client.
    Keys are listed newest first by ``(create_time, key_hash)``.
    """

    __tablename__ = "virtual_keys"

    key_hash: Mapped[str] = mapped_column(String, primary_key=True)
    key_name: Mapped[str] = mapped_column(String)
    """"sk-...abcd": the secret's last four characters, for people to recognise it."""
    key_alias: Mapped[str] = mapped_column(String, default="")
    models: Mapped[list[str]] = mapped_column(JSON)
    """Model names or patterns (``openai/*``) the key may use; empty means all."""
    max_budget: Mapped[float | None] = mapped_column(Money, nullable=True)
    budget_duration: Mapped[str] = mapped_column(String, default="")
    tpm_limit: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    rpm_limit: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    max_parallel_requests: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    expires: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    blocked: Mapped[bool] = mapped_column(Boolean, default=False)
    team_id: Mapped[str] = mapped_column(String, default="")
    user_id: Mapped[str] = mapped_column(String, default="")
    # "metadata" is reserved on declarative classes; the column keeps the user-facing name.
    key_metadata: Mapped[dict[str, Any]] = mapped_column("metadata", JSON)
    spend: Mapped[float] = mapped_column(Money, default=0.0)
    """US dollars spent in the current budget window."""
    role: Mapped[str] = mapped_column(String)
    create_time: Mapped[datetime] = mapped_column(UTCDateTime)
    update_time: Mapped[datetime] = mapped_column(UTCDateTime)
    budget_reset_time: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    model_rpm_limit: Mapped[dict[str, int] | None] = mapped_column(JSON(none_as_null=True), nullable=True)
    """Requests per minute per model group; NULL means none."""
    model_tpm_limit: Mapped[dict[str, int] | None] = mapped_column(JSON(none_as_null=True), nullable=True)
    """Tokens per minute per model group; NULL means none."""

    __table_args__ = (
        CheckConstraint("spend >= 0", name="spend_non_negative"),
        Index("ix_virtual_keys_key_alias", "key_alias"),
        Index("ix_virtual_keys_team_id", "team_id"),
        Index("ix_virtual_keys_user_id", "user_id"),
        Index("ix_virtual_keys_create_time_key_hash", "create_time", "key_hash"),
    )


class AuditLog(Base):
    """One admin action: who did what to which object, with the object before and after.

    ``before`` and ``after`` are the object's settings as the API shows them (never a secret);
    ``None`` for an object that did not exist before (created) or no longer exists (deleted).
    """

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    time: Mapped[datetime] = mapped_column(UTCDateTime)
    actor_key_hash: Mapped[str] = mapped_column(String)
    """SHA-256 hex digest of the caller's key."""
    action: Mapped[str] = mapped_column(String)
    """"create", "update", "delete" or "regenerate"."""
    object_type: Mapped[str] = mapped_column(String)
    object_id: Mapped[str] = mapped_column(String)
    # none_as_null: an absent image is SQL NULL, not the JSON text "null".
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True), nullable=True)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True), nullable=True)

    __table_args__ = (
        Index("ix_audit_log_time", "time"),
        Index("ix_audit_log_object_type_object_id", "object_type", "object_id"),
    )


class ModelDeployment(Base):
    """A deployment added through the admin API (``store_model_in_db``), in LiteLLM's shape.

    ``litellm_params`` holds every parameter as given, except that each value under a secret-looking
    key (``api_key``, ``aws_secret_access_key``, ``*token*``...) is a Fernet token (see
    :mod:`switchyard_management.model_secrets`): the row never holds a provider key in clear.
    """

    __tablename__ = "model_deployments"

    model_id: Mapped[str] = mapped_column(String, primary_key=True)
    model_name: Mapped[str] = mapped_column(String)
    """The model group."""
    litellm_params: Mapped[dict[str, Any]] = mapped_column(JSON)
    model_info: Mapped[dict[str, Any]] = mapped_column(JSON)
    create_time: Mapped[datetime] = mapped_column(UTCDateTime)
    update_time: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_model_deployments_model_name", "model_name"),)


class DailySpend(Base):
    """Spend per UTC day, key, team, user, end user and model group; kept with the spend rows.

    Every spend row that is inserted adds to its day's row in the same transaction (upsert), so
    the sums equal the spend log's; duplicates of a request add nothing. ``provider`` is the
    provider of the first request of the day for that combination.
    """

    __tablename__ = "daily_spend"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    date: Mapped[date] = mapped_column(Date)
    key_hash: Mapped[str] = mapped_column(String, default="")
    """SHA-256 hex digest of the caller's key; never the key."""
    team_id: Mapped[str] = mapped_column(String, default="")
    user_id: Mapped[str] = mapped_column(String, default="")
    end_user: Mapped[str] = mapped_column(String, default="")
    model_group: Mapped[str] = mapped_column(String, default="")
    provider: Mapped[str] = mapped_column(String, default="")
    requests: Mapped[int] = mapped_column(BigInteger, default=0)
    prompt_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    completion_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    cost: Mapped[float] = mapped_column(Money, default=0.0)
    """US dollars."""

    __table_args__ = (
        # Named by hand: the conventional name (every column) passes PostgreSQL's 63-character limit.
        UniqueConstraint(
            "date", "key_hash", "team_id", "user_id", "end_user", "model_group", name=conv("uq_daily_spend_day_group")
        ),
        CheckConstraint("cost >= 0", name="cost_non_negative"),
    )


# --- Tenancy: organizations, teams, users, memberships, end users, budgets. ---------------------


class LimitColumns:
    """The budget and rate-limit columns organizations, teams and users share (as keys have them).

    ``spend`` and ``budget_reset_time`` are written by spend accounting, never by admin updates.
    ``model_rpm_limit`` / ``model_tpm_limit`` map a model group to its limit; NULL means none.
    """

    max_budget: Mapped[float | None] = mapped_column(Money, nullable=True)
    budget_duration: Mapped[str] = mapped_column(String, default="")
    spend: Mapped[float] = mapped_column(Money, default=0.0)
    budget_reset_time: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    tpm_limit: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    rpm_limit: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    max_parallel_requests: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    model_rpm_limit: Mapped[dict[str, int] | None] = mapped_column(JSON(none_as_null=True), nullable=True)
    model_tpm_limit: Mapped[dict[str, int] | None] = mapped_column(JSON(none_as_null=True), nullable=True)
    create_time: Mapped[datetime] = mapped_column(UTCDateTime)
    update_time: Mapped[datetime] = mapped_column(UTCDateTime)


class Organization(LimitColumns, Base):
    """An organization: owns teams, with its own models and limits."""

    __tablename__ = "organizations"

    organization_id: Mapped[str] = mapped_column(String, primary_key=True)
    organization_alias: Mapped[str] = mapped_column(String, default="")
    models: Mapped[list[str]] = mapped_column(JSON)
    org_metadata: Mapped[dict[str, Any]] = mapped_column("metadata", JSON)

    __table_args__ = (
        CheckConstraint("spend >= 0", name="spend_non_negative"),
        Index("ix_organizations_create_time_organization_id", "create_time", "organization_id"),
    )


class Team(LimitColumns, Base):
    """A team: groups keys and users under shared models and limits."""

    __tablename__ = "teams"

    team_id: Mapped[str] = mapped_column(String, primary_key=True)
    team_alias: Mapped[str] = mapped_column(String, default="")
    organization_id: Mapped[str | None] = mapped_column(
        String, ForeignKey("organizations.organization_id"), nullable=True
    )
    models: Mapped[list[str]] = mapped_column(JSON)
    """Model groups the team's keys may use; empty means all."""
    blocked: Mapped[bool] = mapped_column(Boolean, default=False)
    team_metadata: Mapped[dict[str, Any]] = mapped_column("metadata", JSON)

    __table_args__ = (
        CheckConstraint("spend >= 0", name="spend_non_negative"),
        Index("ix_teams_organization_id", "organization_id"),
        Index("ix_teams_create_time_team_id", "create_time", "team_id"),
    )


class User(LimitColumns, Base):
    """A user: owns keys and belongs to teams.

    ``user_role`` is the lower-case name of an ``auth.v1.PrincipalRole`` without its prefix, like
    ``VirtualKey.role``; a key minted for the user takes it unless the key names its own role.
    """

    __tablename__ = "users"

    user_id: Mapped[str] = mapped_column(String, primary_key=True)
    user_email: Mapped[str] = mapped_column(String, default="")
    user_alias: Mapped[str] = mapped_column(String, default="")
    user_role: Mapped[str] = mapped_column(String)
    models: Mapped[list[str]] = mapped_column(JSON)
    user_metadata: Mapped[dict[str, Any]] = mapped_column("metadata", JSON)

    __table_args__ = (
        CheckConstraint("spend >= 0", name="spend_non_negative"),
        Index("ix_users_user_email", "user_email"),
        Index("ix_users_create_time_user_id", "create_time", "user_id"),
    )


class TeamMembership(Base):
    """A user's membership of a team; removed with the team or the user."""

    __tablename__ = "team_memberships"

    team_id: Mapped[str] = mapped_column(String, ForeignKey("teams.team_id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[str] = mapped_column(String, ForeignKey("users.user_id", ondelete="CASCADE"), primary_key=True)
    role: Mapped[str] = mapped_column(String)
    """"admin" or "user"."""
    create_time: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_team_memberships_user_id", "user_id"),)


class Budget(Base):
    """A reusable set of limits (LiteLLM's budget table), referenced by end users."""

    __tablename__ = "budgets"

    budget_id: Mapped[str] = mapped_column(String, primary_key=True)
    max_budget: Mapped[float | None] = mapped_column(Money, nullable=True)
    soft_budget: Mapped[float | None] = mapped_column(Money, nullable=True)
    budget_duration: Mapped[str] = mapped_column(String, default="")
    tpm_limit: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    rpm_limit: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    max_parallel_requests: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    model_max_budget: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True), nullable=True)
    create_time: Mapped[datetime] = mapped_column(UTCDateTime)
    update_time: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_budgets_create_time_budget_id", "create_time", "budget_id"),)


class EndUser(Base):
    """An end user ("customer"): whom a request is made for, named by its ``user`` field."""

    __tablename__ = "end_users"

    user_id: Mapped[str] = mapped_column(String, primary_key=True)
    alias: Mapped[str] = mapped_column(String, default="")
    blocked: Mapped[bool] = mapped_column(Boolean, default=False)
    budget_id: Mapped[str | None] = mapped_column(String, ForeignKey("budgets.budget_id"), nullable=True)
    spend: Mapped[float] = mapped_column(Money, default=0.0)
    create_time: Mapped[datetime] = mapped_column(UTCDateTime)
    update_time: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        CheckConstraint("spend >= 0", name="spend_non_negative"),
        Index("ix_end_users_budget_id", "budget_id"),
        Index("ix_end_users_create_time_user_id", "create_time", "user_id"),
    )

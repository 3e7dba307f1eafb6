"""The admin's pages: staff accounts and roles, API keys (the secret shown once), signing keys (rotate,
retire) and the status of the configured payment provider variants."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.datastructures import State
from litestar.enums import RequestEncodingType
from litestar.params import Body, PathParameter
from litestar.response import Redirect, Template

from ledger.db.engine import Database
from ledger.money import Money
from ledger.services import apikeys, clock, signing_keys
from ledger.services import staff as staff_service
from ledger.services.apikeys import Role
from ledger.services.payments.resolver import manual_queue
from ledger.settings import Settings
from ledger.web.access import current_staff, staff_only
from ledger.web.checkout import payments_of
from ledger.web.pages import Message, page, translator
from providers.registry import ProviderRegistry
from receipts.keys import KeyPurpose, SigningKeyError

ROLES = [role.value for role in Role]
Username = Annotated[str, PathParameter(pattern=r"^[a-z0-9][a-z0-9._-]{2,39}$")]
KeyId = Annotated[int, PathParameter(ge=1, le=2**31 - 1)]
Kid = Annotated[str, PathParameter(pattern=r"^[0-9a-f]{16}$")]


@dataclass
class StaffForm:
    username: str = ""
    display_name: str = ""
    role: str = ""
    consulate: str = ""
    password: str = ""
    csrf_token: str = ""


@dataclass
class RoleForm:
    role: str = ""
    consulate: str = ""
    csrf_token: str = ""


@dataclass
class ApiKeyForm:
    role: str = ""
    consulate: str = ""
    label: str = ""
    csrf_token: str = ""


@dataclass
class PurposeForm:
    purpose: str = ""
    csrf_token: str = ""


Form = Body(media_type=RequestEncodingType.URL_ENCODED)


def _role(text: str) -> Role | None:
    return Role(text) if text in ROLES else None


def _staff_page(
    request: Request[Any, Any, Any],
    *,
    messages: list[Message] | None = None,
    form: StaffForm | None = None,
    status_code: int = 200,
) -> Template:
    database: Database = request.app.state.database
    settings: Settings = request.app.state.settings
    with database.read() as session:
        accounts = staff_service.list_staff(session)
    return page(
        request,
        "admin/staff.html",
        status_code=status_code,
        messages=messages,
        accounts=accounts,
        form=form or StaffForm(),
        roles=ROLES,
        consulates=sorted(settings.consulates),
        now=clock.now(),
        policy=settings.service.staff,
    )


def _done(where: str) -> Redirect:
    """After a change, the page itself shows the new state; a redirect keeps a reload from repeating it."""
    return Redirect(where, status_code=303)


class AdminController(Controller):
    path = "/admin"
    guards = [staff_only(Role.ADMIN)]

    # Staff accounts ----------------------------------------------------------------------------------------

    @get("/", name="web-admin-staff", sync_to_thread=True)
    def staff_page(self, request: Request[Any, Any, Any]) -> Template:
        return _staff_page(request)

    @post("/staff", name="web-admin-staff-create", sync_to_thread=True, status_code=303)
    def create_staff(
        self, request: Request[Any, Any, Any], state: State, data: Annotated[StaffForm, Form]
    ) -> Template | Redirect:
        t = translator(request)
        settings: Settings = state.settings
        database: Database = state.database
        role = _role(data.role)
        if role is None:
            message = Message("error", t("admin.bad_role"))
            return _staff_page(request, messages=[message], form=data, status_code=422)
        try:
            with database.write() as session:
                staff_service.create_staff(
                    session,
                    settings.service.staff,
                    username=data.username.strip(),
                    role=role,
                    password=data.password,
                    display_name=data.display_name,
                    consulate=data.consulate.strip() if role is Role.CASHIER else "",
                    known_consulates=set(settings.consulates),
                )
        except staff_service.StaffError as refused:
            message = Message("error", t("admin.refused", field=refused.field, problem=refused.problem))
            data.password = ""
            return _staff_page(request, messages=[message], form=data, status_code=422)
        return _done("/web/admin")

    @post(
        "/staff/{username:str}/disable", name="web-admin-staff-disable", sync_to_thread=True, status_code=303
    )
    def disable(
        self, request: Request[Any, Any, Any], state: State, username: Username
    ) -> Template | Redirect:
        return self._switch(request, state, username, disabled=True)

    @post("/staff/{username:str}/enable", name="web-admin-staff-enable", sync_to_thread=True, status_code=303)
    def enable(
        self, request: Request[Any, Any, Any], state: State, username: Username
    ) -> Template | Redirect:
        return self._switch(request, state, username, disabled=False)

    def _switch(
        self, request: Request[Any, Any, Any], state: State, username: str, *, disabled: bool
    ) -> Template | Redirect:
        t = translator(request)
        me = current_staff(request)
        if me is not None and me.username == username and disabled:
            return _staff_page(request, messages=[Message("error", t("admin.not_yourself"))], status_code=409)
        database: Database = state.database
        try:
            with database.write() as session:
                staff_service.set_disabled(session, username, disabled=disabled)
        except staff_service.StaffError as refused:
            message = Message("error", t("admin.refused", field=refused.field, problem=refused.problem))
            return _staff_page(request, messages=[message], status_code=404)
        return _done("/web/admin")

    @post("/staff/{username:str}/role", name="web-admin-staff-role", sync_to_thread=True, status_code=303)
    def change_role(
        self,
        request: Request[Any, Any, Any],
        state: State,
        username: Username,
        data: Annotated[RoleForm, Form],
    ) -> Template | Redirect:
        t = translator(request)
        settings: Settings = state.settings
        database: Database = state.database
        role = _role(data.role)
        me = current_staff(request)
        if role is None:
            return _staff_page(request, messages=[Message("error", t("admin.bad_role"))], status_code=422)
        if me is not None and me.username == username and role is not Role.ADMIN:
            return _staff_page(request, messages=[Message("error", t("admin.not_yourself"))], status_code=409)
        try:
            with database.write() as session:
                staff_service.set_role(
                    session,
                    username,
                    role,
                    consulate=data.consulate.strip() if role is Role.CASHIER else "",
                    known_consulates=set(settings.consulates),
                )
        except staff_service.StaffError as refused:
            message = Message("error", t("admin.refused", field=refused.field, problem=refused.problem))
            return _staff_page(request, messages=[message], status_code=422)
        return _done("/web/admin")

    # API keys ----------------------------------------------------------------------------------------------

    @get("/api-keys", name="web-admin-api-keys", sync_to_thread=True)
    def api_keys_page(self, request: Request[Any, Any, Any], state: State) -> Template:
        return self._keys_page(request, state)

    def _keys_page(
        self,
        request: Request[Any, Any, Any],
        state: State,
        *,
        issued: apikeys.IssuedKey | None = None,
        messages: list[Message] | None = None,
        status_code: int = 200,
    ) -> Template:
        database: Database = state.database
        with database.read() as session:
            keys = apikeys.list_keys(session)
        return page(
            request,
            "admin/api_keys.html",
            status_code=status_code,
            messages=messages,
            keys=keys,
            issued=issued,
            roles=ROLES,
            consulates=sorted(state.settings.consulates),
        )

    @post("/api-keys", name="web-admin-api-keys-create", sync_to_thread=True, status_code=201)
    def create_api_key(
        self, request: Request[Any, Any, Any], state: State, data: Annotated[ApiKeyForm, Form]
    ) -> Template:
        t = translator(request)
        database: Database = state.database
        role = _role(data.role)
        if role is None:
            return self._keys_page(
                request, state, messages=[Message("error", t("admin.bad_role"))], status_code=422
            )
        try:
            with database.write() as session:
                issued = apikeys.create_key(
                    session,
                    role,
                    consulate=data.consulate.strip() if role is Role.CASHIER else "",
                    label=data.label.strip(),
                    known_consulates=set(state.settings.consulates),
                )
        except apikeys.ApiKeyError as refused:
            message = Message("error", t("admin.refused", field="consulate", problem=str(refused)))
            return self._keys_page(request, state, messages=[message], status_code=422)
        # The secret is on this one answer only (no-store), never stored nor shown again.
        return self._keys_page(request, state, issued=issued, status_code=201)

    @post(
        "/api-keys/{key_id:int}/revoke",
        name="web-admin-api-keys-revoke",
        sync_to_thread=True,
        status_code=303,
    )
    def revoke_api_key(
        self, request: Request[Any, Any, Any], state: State, key_id: KeyId
    ) -> Template | Redirect:
        database: Database = state.database
        with database.write() as session:
            revoked = apikeys.revoke_key(session, key_id)
        if not revoked:
            message = Message("error", translator(request)("admin.no_key", key=key_id))
            return self._keys_page(request, state, messages=[message], status_code=404)
        return _done("/web/admin/api-keys")

    # Signing keys ------------------------------------------------------------------------------------------

    @get("/signing-keys", name="web-admin-signing-keys", sync_to_thread=True)
    def signing_keys_page(self, request: Request[Any, Any, Any], state: State) -> Template:
        return self._signing_page(request, state)

    def _signing_page(
        self,
        request: Request[Any, Any, Any],
        state: State,
        *,
        messages: list[Message] | None = None,
        status_code: int = 200,
    ) -> Template:
        database: Database = state.database
        with database.read() as session:
            keys = signing_keys.list_keys(session)
        return page(
            request,
            "admin/signing_keys.html",
            status_code=status_code,
            messages=messages,
            keys=keys,
            purposes=[purpose.value for purpose in KeyPurpose],
            now=clock.now(),
        )

    @post("/signing-keys/rotate", name="web-admin-signing-keys-rotate", sync_to_thread=True, status_code=303)
    def rotate(
        self, request: Request[Any, Any, Any], state: State, data: Annotated[PurposeForm, Form]
    ) -> Template | Redirect:
        t = translator(request)
        keys: signing_keys.StampKeys = state.stamp_keys
        database: Database = state.database
        if data.purpose not in {purpose.value for purpose in KeyPurpose}:
            return self._signing_page(
                request, state, messages=[Message("error", t("admin.bad_purpose"))], status_code=422
            )
        try:
            passphrase = keys.secrets.passphrase
            with database.write() as session:
                signing_keys.create_key(
                    session,
                    KeyPurpose(data.purpose),
                    passphrase=passphrase,
                    now=clock.now(),
                    label=f"rotated on the admin page by {_actor(request)}",
                    rotate=True,
                )
        except (signing_keys.KeySetupError, SigningKeyError) as refused:
            message = Message("error", t("admin.key_refused", problem=str(refused)))
            return self._signing_page(request, state, messages=[message], status_code=409)
        return _done("/web/admin/signing-keys")

    @post(
        "/signing-keys/{kid:str}/retire",
        name="web-admin-signing-keys-retire",
        sync_to_thread=True,
        status_code=303,
    )
    def retire(self, request: Request[Any, Any, Any], state: State, kid: Kid) -> Template | Redirect:
        t = translator(request)
        database: Database = state.database
        try:
            with database.write() as session:
                signing_keys.retire_key(session, kid, now=clock.now())
        except SigningKeyError as refused:
            message = Message("error", t("admin.key_refused", problem=str(refused)))
            return self._signing_page(request, state, messages=[message], status_code=409)
        return _done("/web/admin/signing-keys")

    # Providers ---------------------------------------------------------------------------------------------

    @get("/providers", name="web-admin-providers", sync_to_thread=True)
    def providers_page(self, request: Request[Any, Any, Any], state: State) -> Template:
        settings: Settings = state.settings
        path = settings.config_dir / "providers.toml"
        try:
            variants = ProviderRegistry.from_file(path).describe()
            problem = ""
        except Exception as error:  # noqa: BLE001 - a broken providers.toml is shown, not a 500
            variants, problem = [], str(error)
        return page(request, "admin/providers.html", variants=variants, problem=problem, source=str(path))

    # Payments nobody could settle ---------------------------------------------------------------------------

    @get("/payments", name="web-admin-payments", sync_to_thread=True)
    def payments_page(self, request: Request[Any, Any, Any], state: State) -> Template:
        """The manual queue: attempts the resolver gave up on, and parked payments, oldest first."""
        queue = manual_queue(payments_of(state))
        return page(
            request,
            "admin/payments.html",
            queue=[(item, Money(item.amount, item.currency)) for item in queue],
            timezone=state.settings.service.treasury.timezone,
        )


def _actor(request: Request[Any, Any, Any]) -> str:
    me = current_staff(request)
    return me.actor if me is not None else "admin page"


ADMIN_ROUTES: list[Any] = [AdminController]

"""The app shell in AppTest: sign-in, header, pages by role, refusals, expiry."""

from __future__ import annotations

import datetime

import pytest
from apptest_helpers import by_label, new_app, sign_in, texts
from sqlalchemy import select
from streamlit.testing.v1 import AppTest
from web_world import PASSWORD, World

from omop.cohort_tables import AppUser, AuditRecord
from omop.engine import make_engine, session_factory

FAILED = "The username or password is not right"


def _audit(world: World, action: str) -> list[tuple[str, str]]:
    engine = make_engine(world.url)
    with session_factory(engine)() as s:
        rows = s.execute(
            select(AuditRecord.actor, AuditRecord.detail).where(
                AuditRecord.action == action
            )
        ).all()
    engine.dispose()
    return [(str(a), str(d)) for a, d in rows]


def test_sign_in_form_has_labelled_inputs(web: World) -> None:
    at = new_app().run()
    assert not at.exception
    assert [w.label for w in at.text_input] == ["Username", "Password"]
    assert by_label(at.button, "Sign in")
    assert "Sign out" not in [b.label for b in at.button]


def test_wrong_password_and_unknown_user_give_one_message(web: World) -> None:
    wrong = sign_in(new_app(), "clinician-hus", "not-the-password")
    unknown = sign_in(new_app(), "nobody-here", PASSWORD)
    for at in (wrong, unknown):
        assert [e.value for e in at.error] == [at.error[0].value]
        assert FAILED in at.error[0].value
        assert "Username" in [w.label for w in at.text_input]
    assert wrong.error[0].value == unknown.error[0].value


def test_clinician_sees_name_role_centre_and_own_patients(web: World) -> None:
    at = sign_in(new_app(), "clinician-hus", PASSWORD)
    assert not at.exception
    shown = texts(at)
    assert "clinician\\-hus" in shown
    assert "clinician · HUS" in shown
    assert by_label(at.button, "Sign out")
    assert "Toxicity assessments due" in shown  # the home page
    at.switch_page("pages/patients.py").run()
    assert not at.exception
    assert "clinician · HUS" in texts(at)
    table = at.dataframe[0].value
    hus = {web.pseudonyms[h] for h in ("HUS-1001", "HUS-1002", "HUS-1003", "HUS-1004")}
    assert set(table["Pseudonym"]) == hus
    assert set(table["Centre"]) == {"HUS"}


def test_pages_by_role(web: World) -> None:
    from dashboards.ui.shell import PAGES_BY_ROLE

    assert PAGES_BY_ROLE["viewer"] == (
        "overview",
        "cohort_overview",
        "completeness",
        "dose",
        "outcomes",
    )
    assert PAGES_BY_ROLE["researcher"] == ("patients", "ntcp_explorer")
    viewer = sign_in(new_app(), "viewer-tays", PASSWORD)
    assert "viewer · TAYS" in texts(viewer)
    assert "PROM completion" in texts(viewer)
    assert not viewer.exception


def test_researcher_without_project_is_refused_and_audited(web: World) -> None:
    before = len(_audit(web, "web.patients"))
    at = sign_in(new_app(), "researcher", PASSWORD)
    assert "You do not have access to this page." in [e.value for e in at.error]
    assert not at.dataframe
    refusals = _audit(web, "web.patients")
    assert len(refusals) == before + 1
    assert refusals[-1][0] == "researcher"
    assert refusals[-1][1].startswith("refused:")


def test_idle_session_expires_after_30_minutes(web: World) -> None:
    at = sign_in(new_app(), "viewer-tays", PASSWORD)
    at.session_state["rtcohort.last_seen"] = datetime.datetime.now(
        datetime.UTC
    ) - datetime.timedelta(minutes=29)
    at.run()
    assert "viewer · TAYS" in texts(at)
    at.session_state["rtcohort.last_seen"] = datetime.datetime.now(
        datetime.UTC
    ) - datetime.timedelta(minutes=31)
    at.run()
    assert "30 minutes" in texts(at)
    assert "viewer · TAYS" not in texts(at)
    assert not at.dataframe
    assert "Sign out" not in [b.label for b in at.button]
    assert "rtcohort.identity" not in at.session_state


def test_sign_out(web: World) -> None:
    at = sign_in(new_app(), "data-manager-hus", PASSWORD)
    assert "data manager · HUS" in texts(at)
    by_label(at.button, "Sign out").click()
    at.run()
    assert "You have signed out." in texts(at)
    assert "data manager · HUS" not in texts(at)
    assert "rtcohort.identity" not in at.session_state


def test_markup_as_a_user_name_is_refused_like_any_other(web: World) -> None:
    # User names match ^[a-z0-9][a-z0-9._-]{0,63}$, so markup can never be a name;
    # typed into the form it gets the one sign-in message and is never rendered.
    at = sign_in(new_app(), "<b>bold</b>", PASSWORD)
    assert [e.value for e in at.error] == [at.error[0].value]
    assert FAILED in at.error[0].value
    assert not any("<b>" in m.value for m in at.markdown)


def test_viewer_navigation_has_no_patients_page(web: World) -> None:
    at = sign_in(new_app(), "viewer-tays", PASSWORD)
    with pytest.raises(ValueError, match="Known pages"):
        at.switch_page("pages/patients.py")
    assert not at.dataframe or "Pseudonym" not in at.dataframe[0].value.columns


def test_app_started_without_serve_says_so(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("RTCOHORT_DATABASE_URL", "RTCOHORT_AUDIT_KEY_FILE"):
        monkeypatch.delenv(name, raising=False)
    at = new_app().run()
    assert "start the app with rtcohort serve" in texts(at)
    assert not at.text_input


_AUTH_SECRETS = {
    "auth": {
        "redirect_uri": "http://localhost:8501/oauth2callback",
        "cookie_secret": "not-a-secret-only-a-test",
        "client_id": "rtcohort",
        "client_secret": "test",
        "server_metadata_url": "http://127.0.0.1:9/.well-known/openid-configuration",
    }
}


def _oidc_app(claims: dict[str, object]) -> AppTest:
    """A browser session back from the provider: ``st.user`` holds its claims."""
    at = new_app()
    at.secrets = _AUTH_SECRETS
    at.user = {"is_logged_in": True, **claims}
    return at.run()


def _account_with_email(world: World, name: str, email: str) -> None:
    from cohort.operations import add_account
    from cohort.users import ADMIN_USERNAME

    engine = make_engine(world.url)
    with session_factory(engine).begin() as s:
        if s.scalar(select(AppUser).where(AppUser.username == name)) is None:
            add_account(s, ADMIN_USERNAME, name, role="clinician", centres=["HUS"],
                        password=PASSWORD, email=email)  # fmt: skip
    engine.dispose()


def test_oidc_identity_signs_in_the_account_with_that_email(web: World) -> None:
    _account_with_email(web, "oidc-hus", "oidc.hus@example.org")
    at = _oidc_app({"email": "OIDC.HUS@example.org", "email_verified": True})
    assert not at.exception
    assert "clinician · HUS" in texts(at)  # signed in: the header shows the account
    assert "oidc\\-hus" in texts(at)
    assert by_label(at.button, "Sign out")


@pytest.mark.parametrize(
    "claims",
    [
        {"email": "oidc.hus@example.org", "email_verified": False},
        {"email": "nobody@example.org", "email_verified": True},
    ],
)
def test_oidc_identity_without_account_is_refused(
    web: World, claims: dict[str, object]
) -> None:
    _account_with_email(web, "oidc-hus", "oidc.hus@example.org")
    before = len(_audit(web, "sign-in"))
    at = _oidc_app(claims)
    assert not at.exception
    assert "No account with a role matches your sign-in" in texts(at)
    assert "clinician · HUS" not in texts(at)
    assert "rtcohort.identity" not in at.session_state
    refusals = _audit(web, "sign-in")
    assert len(refusals) == before + 1
    assert refusals[-1][1] in {"refused: unverified e-mail", "refused: unknown e-mail"}

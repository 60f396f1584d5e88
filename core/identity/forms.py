"""Forms of the login and account pages (Flask-WTF, CSRF-protected)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import HiddenField, IntegerField, PasswordField, StringField
from wtforms.validators import DataRequired, Length, NumberRange, Optional


class LoginForm(FlaskForm):
    email = StringField(_l("E-mail"), validators=[DataRequired(), Length(max=254)])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=1024)])
    next = HiddenField()


class ApiTokenForm(FlaskForm):
    name = StringField(_l("Token name"), validators=[DataRequired(), Length(max=100)])
    expires_in_days = IntegerField(_l("Expires after (days, empty for never)"),
                                   validators=[Optional(), NumberRange(min=1, max=3650)])


class ConfirmForm(FlaskForm):
    """A form with only the CSRF token, for buttons that change something (log out, revoke)."""

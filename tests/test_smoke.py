from core.db import db
from core.identity.models import Person


def test_app_boots_and_persists(app, create_person):
    person = create_person(roles=("expert",))
    db.session.commit()
    assert db.session.get(Person, person.id).has_role("expert")

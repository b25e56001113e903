"""Common given names, and the column names that announce a person's name.

A value shaped like a name ("Blue Widget", "New York") is not enough to call a
column personal; starting with a common given name, or sitting under a column
called ``surname``, is. The list is deliberately small and plain data: it only
has to recognise a column, not every person in it.
"""

from __future__ import annotations

import re

__all__ = ["FIRST_NAMES", "PERSON_COLUMN", "WEAK_NAME_COLUMN"]

_FIRST_NAMES_TEXT = """
    aaron abdul abigail adam adrian ahmed aisha alan albert alex alexander alexandra alfie
    ali alice alison amanda amber amelia amir amy andrea andrew angela ann anna anne anthony
    archie arthur ashley barbara ben benjamin beth bethany betty bill brenda brian bruce
    callum cameron carl carlos carol caroline catherine charles charlie charlotte chloe chris
    christine christopher claire clare colin connor craig daniel daisy darren david dawn dean
    deborah debra denise dennis diana diane donald donna dorothy douglas dylan edward eleanor
    elizabeth ella ellie emily emma eric ethan evelyn evie fatima fiona florence frances frank
    freddie freya gary gavin george georgia gemma gerald gillian grace graham gregory hannah
    harold harper harriet harry harvey hayley heather helen henry holly ian imogen isaac
    isabel isabella isla ivy jack jacob jake james jamie jane janet jason jean jennifer jenny
    jeremy jessica joan joanne joe john jonathan jordan joseph joshua joyce judith julia julie
    justin karen kate katherine kathleen kayla keith kelly kenneth kevin kieran kim kyle laura
    lauren leah lee leo lewis liam lily linda lisa logan louis louise lucas lucy luke lydia
    maisie margaret maria marie mark martin mary mason matilda matthew megan melissa michael
    michelle mia mohammed mohammad muhammad nancy natalie nathan neil nicholas nicola nigel
    noah oliver olivia omar oscar owen paige pamela patricia patrick paul paula peter philip
    phoebe poppy priya rachel raj rebecca richard robert robin rose ruby ruth ryan sally
    samantha samuel sandra sara sarah scott sean sharon shirley simon sophia sophie stephanie
    stephen steven stuart susan thomas tim timothy toby tom tony tracey victoria wendy
    william yasmin zachary zara zoe
"""

FIRST_NAMES: frozenset[str] = frozenset(_FIRST_NAMES_TEXT.split())

PERSON_COLUMN = re.compile(
    r"(^|_)(first|last|middle|given|family|full|maiden|sur|fore|nick|birth|legal)_?names?($|_)"
    r"|(^|_)(customer|client|patient|employee|person|contact|member|staff|student|"
    r"holder|cardholder|account_holder|recipient|sender|passenger|guest|applicant)_?names?($|_)"
    r"|^(surname|forename|firstname|lastname|fullname|givenname)s?$"
)

WEAK_NAME_COLUMN = re.compile(r"(^|_)(names?|customer|client|contact|person|holder|owner)($|_)")

"""The review loop: the rows the champion is least sure of go to reviewers, and their labels come back as data.

* :mod:`.selection` picks a night's review batch (pure functions over margins and decisions);
* :mod:`.store` keeps the queue of rows sent and the labels taken back (JSON Lines in ``data/labelling``);
* :mod:`.studio` speaks Label Studio: the labelling config, import JSON, export JSON and a REST client;
* :mod:`.annotations` turns annotations into delivery rows (one label per id, disagreements held back);
* :mod:`.loop` wires them: ``push`` (select and send) and ``pull`` (read back and deliver).

Only anonymised text leaves: candidates are read from ``data/anonymised``.
"""

"""Every table, so that `Base.metadata` (what migrations are made from and compared with) has them all: a new
domain module is named here."""

from kit.db import datasets, keys, ratings, uploads, webhooks
from kit.db.base import Base

DOMAINS = (keys, webhooks, uploads, ratings, datasets)
metadata = Base.metadata

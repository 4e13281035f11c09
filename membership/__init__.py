"""Membership core: is this code in the training corpus, where, and how strongly?"""

from .match import Match, QuerySpan, Source, SourceSpan
from .query import Matcher, decode_query
from .settings import QuerySettings

__all__ = ["Match", "Matcher", "QuerySettings", "QuerySpan", "Source", "SourceSpan", "decode_query"]

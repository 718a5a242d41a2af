"""Pony entities and the data helpers over them; nothing here knows HTTP.

Helpers raise `im_core.errors.ApiError` naming a row of the contract's error table; which
errors each raises is in its docstring.
"""

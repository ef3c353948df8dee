"""The form-to-pull-request bridge: citizens submit and rate without a forge account.

A submission is parsed and checked (:mod:`.abuse`), masked and its contact
details sealed (:mod:`.privacy`), written to a durable outbox (:mod:`.outbox`)
before the citizen gets a receipt, and published by a worker (:mod:`.worker`)
through a forge provider (:mod:`.providers`) as a branch and a pull request.
"""

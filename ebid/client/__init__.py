"""The bidder's side (投标人客户端): ``ebid client ...`` makes keys, builds, seals and submits bids.

Everything here runs on the bidder's own machine and talks to the platform only over its public HTTP
API: the bid (投标文件) is built and sealed locally, and the server only ever receives ciphertext.

* :mod:`ebid.client.bidzip` builds and checks the bid ZIP (``bid.json`` plus documents);
* :mod:`ebid.client.sealing` seals it for a tender and lot (:mod:`crypto.envelope`);
* :mod:`ebid.client.http` is the API client (token, errors, retries);
* :mod:`ebid.client.upload` is the resumable upload, finalize and the receipt kept;
* :mod:`ebid.client.verify` checks receipts and log proofs against the pinned platform keys;
* :mod:`ebid.client.state` keeps the local state (pinned keys, tree heads seen, receipts);
* :mod:`ebid.client.cli` is the ``ebid client`` command group (also ``python -m ebid.client``).
"""

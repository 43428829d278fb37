"""Synthetic shop data shaped like the real UCI Online Retail set, reproducible by seed.

    shopstream generate --seed 1 --days 30 --out gen/     # or python -m generator …
    shopstream generate --days 7 --post --rate 20          # live, to the running stack

What it is for: loads larger than the real year (``--scale 10`` is ten times its daily
volume; a benchmark pushes millions of lines through the stack) with the real data's
shape, so that what a sink pays per invoice, per line and per customer grows as it would.

The model (every figure measured on the real data by :mod:`generator.measure`, kept in
:mod:`generator.params`):

* **Calendar** — the real shop's: closed on Saturdays, from Christmas Eve to 3 January,
  Good Friday to Easter Monday and the May and August bank holidays (over the real
  period it closes exactly the real closed days: 305 open of 374). Invoices per open day:
  84.9 × the weekday's factor (Thursday 1.26, Sunday 0.56) × the month's (February
  0.68 … November 1.57) × ``--scale``, with the real day-to-day spread (CV 0.20). Within
  a day, invoices follow the weekday's real hourly profile (mostly 8–18 h, Thursdays until
  20 h, Sundays 9–16 h), in time order, numbered from 536365 upwards with the real gaps
  (45,223 numbers for 25,900 invoices; seven digits once 999999 is passed).
* **Six kinds of invoice**, at their real shares: customers' orders (71.6%), the web
  shop's orders without a customer number (5.5%: large, 92.6 lines on average, at about
  twice the list price, half with a DOTCOM POSTAGE line), stock notes (8.1%: one line
  without a customer, price 0, mostly no description, two thirds taking stock out),
  customers' cancellations (14.1%), cancellations without a customer (0.7%: Amazon fees,
  bank charges, manual corrections), and ``A`` adjustments ("Adjust bad debt", 3 a year).
  So 14.8% of invoices are ``C`` invoices and 24.9% of lines have no customer, as in the
  real data.
* **Lines per invoice** from the real quantiles of each kind (orders: median 15, mean
  21.5, up to 542; web orders up to 1,114; cancellations: mostly 1), 20.9 on average
  overall. About 1% of lines repeat an earlier line of their invoice exactly, and 0.17% of
  invoices straddle a minute, as real ones do.
* **Products** (:mod:`generator.catalogue`): 3,914, with stable codes, descriptions and
  four prices each; how often each is ordered follows the real popularity curve, and how
  many units a line has follows the real quantities of its price band (cheap things by
  the dozen, dear ones by the piece). A line of 12 units or more is at the bulk price 17%
  of the time, as in the real data.
* **Customers** (:class:`generator.shop.Customers`): 4,339 × ``--scale``, numbered like
  the real ones (12346 to 18287 at scale 1), each with one country from the real
  customers' mix (90% United Kingdom, then Germany, France, Spain, …) and ordering as
  often as the real curve says (the top 10% place 43% of the orders). Never stored: a
  customer's number and country are computed from its index.
* **Cancellations** take back (all of, a third of the time, else part of) lines of an
  order the same customer placed lately (88% of their lines, as measured), at the price
  it was billed; the rest are other products.
* **Non-product codes** (POST, DOT, C2, M, D, S, BANK CHARGES, AMAZONFEE, CRUK, B) per
  kind and destination, at the real rates: postage on 67% of orders from abroad, carriage
  on 38% of Irish ones, a manual line on 1.4% of UK orders, discounts and CRUK commission
  as one-line cancellations, with their real descriptions, quantities and prices.

What it leaves out: seasonal products (a product sells all year), customers' loyalty to
products, prices that change on a date, and the handful of freak lines (80,995 paper
birds) that the tails of the measured tables stop short of. A year at scale 1 has the
real year's size (about 26,000 invoices, 540,000 lines); its net total comes out 10–15%
above the real £9.75 million.

Reproducible: the same arguments give the same bytes (for one :data:`GENERATOR_VERSION`
of the tables and draws). Every draw comes from a ``random.Random`` seeded from the seed
(never the global RNG, ``hash()`` or the clock), and the first ``d`` days of a longer run
are the run of ``d`` days. Streamed: memory stays at a few MB whatever ``--days`` and
``--scale`` (about 400,000 lines a second, written).
"""
from generator.params import GENERATOR_VERSION
from generator.shop import Invoice, Line, Options, Shop

__all__ = ["GENERATOR_VERSION", "Invoice", "Line", "Options", "Shop"]

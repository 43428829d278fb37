"""The shop's products: stable codes, descriptions and prices, built from the seed alone.

The catalogue holds as many products as the real shop sold (3,914), whatever the scale
or the number of days. Each product has:

* a stock code shaped like the real ones: five digits whose first two follow the real
  prefixes (``22…``, ``21…``, ``84…``), and for about a quarter of the codes a family of
  colour variants ``85099A``, ``85099B``, …; a few dotcom codes (``DCGS0031``) and gift
  vouchers (``gift_0001_20``);
* an upper-case description made of the real data's vocabulary (``PINK REGENCY TEA
  CUP``, ``SET OF 6 RETROSPOT CAKE CASES``), unique, at most 35 characters, with the real
  quirks at their real rates: a trailing space, a comma (quoted in the CSV), an inch mark
  ``7"`` (quoted and doubled), and ``£`` in the gift vouchers' descriptions;
* four prices, exact to the penny, stable for the whole run: the list price (drawn from
  the real products' list prices), a bulk price (a line of 12 units or more is sometimes
  billed at it, as in the real data), a higher price (a few lines are billed above list,
  as the real prices moved during the year), and the web shop's price (about twice the
  list price, what orders without a customer number pay);
* a popularity: the real rank-frequency curve (the top 1% of products make 9% of lines,
  half of them 92%), ranks shuffled over the codes, then reweighted so that each band of
  list prices has its real share of the lines (cheap products are the popular ones).
"""
from __future__ import annotations

import random as _random
from decimal import Decimal
from functools import lru_cache
from typing import NamedTuple

from generator.params import LORENZ_RANKS, MEASURED, RATIO_PROBS, band_of
from generator.sampling import Choice, Quantiles, Tiers, TopAndTail, sub_seed

MAX_DESCRIPTION = 35  # the longest real description

COLOURS = ("WHITE", "RED", "PINK", "BLUE", "GREEN", "IVORY", "CREAM", "BLACK", "SILVER", "GOLD", "PURPLE",
           "YELLOW", "ORANGE", "LILAC", "TURQUOISE", "GREY", "BROWN", "NATURAL")
THEMES = ("RETROSPOT", "VINTAGE", "REGENCY", "PAISLEY", "HEART", "STAR", "CHRISTMAS", "UNION FLAG", "SPACEBOY",
          "DOLLY GIRL", "WOODLAND", "POLKADOT", "ROSE", "FLOWER", "BIRD", "BUTTERFLY", "FAIRY", "FRENCH", "ANTIQUE",
          "BAROQUE", "GINGHAM", "STRAWBERRY", "DAISY", "SWEETHEART", "PANTRY", "KITCHEN", "GARDEN", "PARTY",
          "EASTER", "BIRTHDAY", "LOVE", "HOME SWEET HOME", "SKULL", "CIRCUS", "JUNGLE", "TEA PARTY", "ENGLISH ROSE",
          "SCANDINAVIAN", "MOROCCAN", "ALPHABET", "OWL", "RABBIT", "DOG", "CAT", "APPLE", "CHERRY", "LEAF", "SNOWFLAKE",
          "REINDEER", "ANGEL", "DINOSAUR", "PIRATE", "PARIS", "LONDON", "RETRO", "CHARLOTTE", "SPOTTY", "STRIPE",
          "TOADSTOOL", "BLOSSOM", "DIAMANTE", "ORIENTAL", "GYMKHANA", "ROBOT", "TREASURE", "SEASIDE", "LAVENDER")
MATERIALS = ("GLASS", "METAL", "ZINC", "WOODEN", "CERAMIC", "ENAMEL", "FELT", "PAPER", "TIN", "CRYSTAL", "WICKER",
             "LACE", "VELVET", "CANVAS", "PORCELAIN", "BEADED", "FLOCK", "PAINTED", "WIRE", "COTTON")
SIZES = ("SMALL", "LARGE", "MINI", "JUMBO", "GIANT", "MEDIUM", "TALL")
ITEMS = ("T-LIGHT HOLDER", "LUNCH BAG", "CAKE CASES", "MUG", "JUMBO BAG", "CANDLE", "CUSHION COVER", "NOTEBOOK",
         "DOORMAT", "WALL CLOCK", "PHOTO FRAME", "TEA TOWEL", "BOWL", "PLATE", "TEA CUP", "TRAY", "JAR", "BOTTLE",
         "MIRROR", "HOOK", "GARLAND", "DECORATION", "NECKLACE", "BRACELET", "EARRINGS", "RING", "PURSE", "HAIR CLIP",
         "SIGN", "TILE", "STORAGE TIN", "LANTERN", "COAT HANGER", "HOT WATER BOTTLE", "GIFT WRAP", "GIFT BAG", "CARD",
         "NAPKINS", "PLACEMATS", "APRON", "SHOPPING BAG", "BUNTING", "CHALKBOARD", "MONEY BOX", "SNOW GLOBE",
         "DRAWER KNOB", "KEY RING", "PENCILS", "ALARM CLOCK", "PARASOL", "PICNIC BASKET", "CAKE STAND", "EGG CUP",
         "CUTLERY SET", "BIRD HOUSE", "WATERING CAN", "PHOTO ALBUM", "SEWING KIT", "JIGSAW", "STICKERS", "BUCKET",
         "TRINKET BOX", "JEWELLERY BOX", "CANDLESTICK", "PLANT POT", "CHOPSTICKS", "SPOON", "TEAPOT", "DISH",
         "CLOTHES PEGS", "RIBBONS", "HANDBAG", "PURSE MIRROR", "ORNAMENT", "WREATH", "BAUBLE", "STOCKING",
         "PAPER CHAIN KIT", "PARTY BAGS", "BALLOONS", "WATER BOTTLE", "SPONGE", "TISSUES", "DOOR STOP", "SOAP DISH")
PACKS = (2, 3, 4, 6, 8, 10, 12, 20, 24, 36, 60, 72)
INCHES = (4, 5, 6, 7, 8, 10, 12)
GIFT_VOUCHERS = (10, 20, 30, 40, 50, 100)  # the real shop's, sold at their value before VAT (17.5%)


class Price(NamedTuple):
    """An exact price: pence, the text the source files spell it with (``2.1``, ``18.0``,
    ``0.42``: as the real files do), and the Decimal the contract reads."""

    cents: int
    text: str
    value: Decimal


@lru_cache(maxsize=8192)
def price(cents: int) -> Price:
    units, rest = divmod(abs(cents), 100)
    sign = "-" if cents < 0 else ""
    if rest % 10:
        text = f"{sign}{units}.{rest:02d}"
    else:
        text = f"{sign}{units}.{rest // 10}"
    return Price(cents, text, Decimal(cents).scaleb(-2))


def csv_field(text: str) -> str:
    """A CSV field as the real files write it: quoted only when it holds a comma, a quote
    or a line break (a trailing space stays bare)."""
    if any(ch in text for ch in ',"\r\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


class Item(NamedTuple):
    """What a line names: a stock code and a description (``""`` for none), and the two
    as the CSV writes them."""

    code: str
    description: str
    field: str

    @classmethod
    def of(cls, code: str, description: str) -> Item:
        return cls(code, description, f"{csv_field(code)},{csv_field(description)}")


class Product(NamedTuple):
    item: Item
    list: Price
    bulk: Price
    higher: Price
    dotcom: Price
    band: str  # of generator.params.PRICE_BANDS, by the list price: how many are bought at once


def _cents(value: float) -> int:
    return max(1, int(value + 0.5))


class Catalogue:
    """The products by popularity: :meth:`draw` picks one as a line of an order would."""

    def __init__(self, products: list[Product]):
        self.products = products
        tiers = Tiers(LORENZ_RANKS, MEASURED["products"]["lorenz"], len(products))
        weights = [tiers.weight(rank) for rank in range(len(products))]
        # the real curve, reweighted so that each price band has its real share of the lines
        # (dear products are the less popular ones: drawn independently, they would be too many)
        bands = {band: lines for band, (_, lines) in MEASURED["prices"]["bands"].items()}
        held = dict.fromkeys(bands, 0.0)
        for product, weight in zip(products, weights):
            held[product.band] += weight
        factor = {band: bands[band] / sum(bands.values()) / held[band] if held[band] else 0.0 for band in bands}
        self._choice = Choice([(p, w * factor[p.band]) for p, w in zip(products, weights)])
        self.draw = self._choice.draw

    @classmethod
    def build(cls, seed: int) -> Catalogue:
        rnd = _random.Random(sub_seed(seed, "catalogue"))
        spec = MEASURED["products"]
        count = spec["count"]
        shapes = spec["shapes"]
        letters_share = (shapes["5 digits and a letter"] + shapes["5 digits and letters"]) / count
        family_size = 3.5  # variants per family, drawn from 2 to 5 (a hand-set choice; the share above is measured)
        family_odds = letters_share / (family_size - letters_share * (family_size - 1))
        prefixes = Choice(spec["prefixes"])
        list_prices = TopAndTail(MEASURED["prices"]["list"], scale=100)
        ratios = {name: Quantiles(RATIO_PROBS, MEASURED["prices"][name]) for name in
                  ("lower_ratio", "higher_ratio", "dotcom_ratio")}
        names = _Descriptions(rnd, spec)

        products: list[Product] = []
        codes: set[str] = set()

        def priced(item: Item, list_cents: int, *, fixed: bool = False) -> Product:
            base = price(list_cents)
            band = band_of(base.value)
            if fixed:
                return Product(item, base, base, base, base, band)
            bulk = min(list_cents - 1, _cents(list_cents * ratios["lower_ratio"].at(rnd.random())))
            higher = max(list_cents + 1, _cents(list_cents * ratios["higher_ratio"].at(rnd.random())))
            dotcom = max(list_cents + 1, _cents(list_cents * ratios["dotcom_ratio"].at(rnd.random())))
            return Product(item, base, price(max(1, bulk)), price(higher), price(dotcom), band)

        for face in GIFT_VOUCHERS:
            item = Item.of(f"gift_0001_{face}", f"Dotcomgiftshop Gift Voucher £{face}.00")
            products.append(priced(item, int(Decimal(face * 100) / Decimal("1.175") + Decimal("0.5")), fixed=True))
        for _ in range(max(0, shapes["other"] - len(GIFT_VOUCHERS))):
            code = f"DCGS{rnd.randrange(1, 100):04d}"
            while code in codes:
                code = f"DCGS{rnd.randrange(1, 100):04d}"
            codes.add(code)
            products.append(priced(Item.of(code, names.new()), _cents(list_prices.draw(rnd.random))))
        while len(products) < count:
            base = f"{prefixes.draw(rnd.random)}{rnd.randrange(1000):03d}"
            if base in codes:
                continue
            codes.add(base)  # the five digits, taken by the product or by its family of variants
            list_cents = _cents(list_prices.draw(rnd.random))
            if rnd.random() < family_odds:
                size = min(rnd.randint(2, 5), count - len(products))
                for letter, text in zip("ABCDE", names.variants(size)):
                    products.append(priced(Item.of(base + letter, text), list_cents))
            else:
                products.append(priced(Item.of(base, names.new()), list_cents))
        rnd.shuffle(products)  # popularity ranks fall anywhere in the code space
        return cls(products)


def _plural(item: str) -> str:
    if item.endswith("S"):
        return item
    return item + ("ES" if item.endswith(("SH", "CH", "X")) else "S")


class _Descriptions:
    """Unique upper-case descriptions with the real data's quirks at their measured rates."""

    def __init__(self, rnd: _random.Random, spec: dict):
        self.rnd = rnd
        self.seen: set[str] = set()
        self.trailing, self.comma, self.quote = spec["trailing_space"], spec["comma"], spec["quote"]

    def _pick(self, words: tuple) -> str:
        return words[int(self.rnd.random() * len(words))]

    def _body(self) -> tuple[str, str]:
        """A description as (what goes before the colour, what goes after): variants of
        one family differ by the colour alone."""
        pick, rnd = self._pick, self.rnd
        form = rnd.random()
        item = pick(ITEMS)
        if form < 0.35:
            return "", f"{pick(THEMES)} {item}"
        if form < 0.55:
            return "", f"{pick(MATERIALS)} {pick(THEMES)} {item}"
        if form < 0.70:
            return pick(SIZES), f"{pick(THEMES)} {item}"
        if form < 0.85:
            return f"SET OF {pick(PACKS)}", f"{pick(THEMES)} {_plural(item)}"
        return "", f"{pick(MATERIALS)} {item}"

    @staticmethod
    def _join(*words: str) -> str:
        return " ".join(w for w in words if w)

    def _quirks(self, text: str) -> str:
        rnd = self.rnd
        if rnd.random() < self.quote:
            text = f'{text} {self._pick(INCHES)}"'
        if rnd.random() < self.comma:
            head, _, tail = text.rpartition(" ")
            text = f"{head},{tail}" if head else f"{text}, "
        if rnd.random() < self.trailing and not text.endswith(" "):
            text += " "
        return text

    def _fresh(self, make) -> str:
        while True:
            text = make()
            if len(text) <= MAX_DESCRIPTION and text.rstrip() not in self.seen:
                self.seen.add(text.rstrip())
                return text

    def new(self) -> str:
        def make() -> str:
            before, after = self._body()
            colour = self._pick(COLOURS) if self.rnd.random() < 0.45 else ""
            return self._quirks(self._join(before, colour, after))

        return self._fresh(make)

    def variants(self, size: int) -> list[str]:
        """``size`` descriptions of one family: the same product in different colours."""
        while True:
            before, after = self._body()
            colours = self.rnd.sample(COLOURS, size)
            texts = [self._quirks(self._join(before, colour, after)) for colour in colours]
            if all(len(t) <= MAX_DESCRIPTION for t in texts) and not any(t.rstrip() in self.seen for t in texts):
                self.seen.update(t.rstrip() for t in texts)
                return texts

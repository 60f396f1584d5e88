"""Random clean tenders (无串通的模拟招标) and tenders with one planted sign of collusion.

Used by the screen tests and by ``benchmarks/collusion_fpr.py``. A clean tender has 3–12 independent
bidders: distinct addresses, devices, keys, payers and project managers; their own documents, written
independently from a shared vocabulary and a shared stock of technical phrases (bidders answer the same
tender, so texts share words and short phrases but not long passages); metadata from a realistic mix of
authoring programs, with "Administrator"-style authors on some computers; prices
``estimate × (1 − d_i)`` with the discounts ``d_i`` drawn independently from a normal distribution (mean
4–6 %, standard deviation 3–4 %, both drawn per tender) truncated to [0 %, 20 %] (bids above the ceiling
price are rejected, and discounts beyond 20 % are rare and face the abnormally-low-price review).
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import replace
from decimal import ROUND_HALF_UP, Decimal

from supervision.screens import CODES, BidFacts, DocumentFact

CENT = Decimal("0.01")
LOT = "01"

_CHARS = ("工程施工项目管理质量安全进度技术措施方案计划组织人员设备材料检验验收混凝土钢筋模板脚手架土方开挖回填"
          "基础主体结构装饰装修给排水电气暖通消防道路桥梁隧道排水管网绿化照明监理合同工期造价预算结算变更签证"
          "测量放线定位标高轴线沉降观测试验检测养护浇筑振捣焊接连接防水保温屋面墙体门窗楼地面涂料油漆吊装运输"
          "临时设施用电用水环境保护文明扫尘噪声控制应急预案培训交底责任制度检查整改记录资料归档竣工保修服务")
_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
_GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华建国志红玉兰文斌宇浩凯鹏飞俊峰亮晨辉"
_CITIES = ("江宁", "锡山", "吴中", "鼓楼", "海曙", "余杭", "历城", "洪山", "雁塔", "高新", "滨湖", "天河", "南山",
           "武侯", "岳麓", "包河", "新城", "城关", "开福", "金水")
_TRADES = ("建设", "建工", "建筑", "市政", "路桥", "水利", "安装", "城建", "工程", "园林")
_CREATORS = ("Microsoft Word", "Microsoft® Word 2016", "Microsoft® Word for Microsoft 365", "WPS 文字",
             "WPS Office", "LibreOffice Writer")
_PRODUCERS = ("Microsoft: Print To PDF", "Microsoft® Word 2016", "WPS 文字", "Adobe PDF Library 15.0",
              "LibreOffice 7.5", "Skia/PDF m120", "")
_GENERIC_AUTHORS = ("Administrator", "User", "微软用户", "", "Lenovo", "admin")
_BROWSERS = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/{v}.0.0.0 Safari/537.36",
             "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:{v}.0) Gecko/20100101 Firefox/{v}.0",
             "Mozilla/5.0 (Windows NT 6.1; WOW64) AppleWebKit/537.36 Chrome/{v}.0.0.0 Safari/537.36 360SE")


def _vocabulary() -> tuple[tuple[str, ...], tuple[str, ...]]:
    rng = random.Random(20180101)
    words = tuple(sorted({"".join(rng.choice(_CHARS) for _ in range(rng.randint(2, 4))) for _ in range(400)}))
    phrases = tuple(sorted({"".join(rng.choice(words) for _ in range(rng.randint(3, 6))) for _ in range(80)}))
    return words, phrases


WORDS, PHRASES = _vocabulary()


def bid_text(rng: random.Random, length: int) -> str:
    """An independently written text of about ``length`` characters from the shared vocabulary."""
    parts: list[str] = []
    size = 0
    clause = 0
    while size < length:
        if rng.random() < 0.15:
            piece = rng.choice(PHRASES)
        elif rng.random() < 0.05:
            piece = f"{rng.randint(1, 999)}{rng.choice(('米', '天', '吨', '项', '%', 'MPa'))}"
        else:
            piece = rng.choice(WORDS)
        parts.append(piece)
        size += len(piece)
        clause += 1
        if clause >= rng.randint(4, 12):
            parts.append(rng.choice("，，，；。"))
            clause = 0
    return "".join(parts) + "。"


def _digest(rng: random.Random) -> str:
    return f"{rng.getrandbits(256):064x}"


def _timestamp(rng: random.Random) -> str:
    day = rng.randint(1, 20)
    hour = min(23, max(7, int(rng.gauss(14, 3))))
    return f"D:202611{day:02d}{hour:02d}{rng.randint(0, 59):02d}{rng.randint(0, 59):02d}+08'00'"


def _metadata(rng: random.Random, author: str) -> dict[str, str]:
    meta = {"author": author, "creator": rng.choice(_CREATORS), "producer": rng.choice(_PRODUCERS),
            "creation_date": _timestamp(rng)}
    return {k: v for k, v in meta.items() if v}


def _unique(rng: random.Random, make, taken: set[str]) -> str:
    while True:
        value = make()
        if value not in taken:
            taken.add(value)
            return value


def _prices(rng: random.Random, n: int) -> tuple[Decimal, list[Decimal]]:
    estimate = Decimal(rng.randrange(5_000, 500_000)) * 100
    centre, sd = rng.uniform(0.04, 0.06), rng.uniform(0.03, 0.04)
    prices = []
    for _ in range(n):
        d = rng.gauss(centre, sd)
        while not 0 <= d <= 0.20:
            d = rng.gauss(centre, sd)
        prices.append(price_at(estimate, d))
    return estimate, prices


def price_at(estimate: Decimal, discount: float) -> Decimal:
    """``estimate × (1 − discount)`` to the cent."""
    return (estimate * (1 - Decimal(str(round(discount, 6))))).quantize(CENT, rounding=ROUND_HALF_UP)


def random_clean_tender(rng: random.Random, n_bids: int | None = None) -> list[BidFacts]:
    """The bids of one lot from independent bidders (3–12 unless ``n_bids`` says how many)."""
    n = n_bids if n_bids is not None else rng.randint(3, 12)
    _, prices = _prices(rng, n)
    taken: set[str] = set()
    first_id = rng.randint(1, 10_000) * 100
    bids = []
    for i in range(n):
        company = _unique(rng, lambda: f"{rng.choice(_CITIES)}{rng.choice(_TRADES)}"
                                       f"{rng.choice(('集团有限公司', '有限公司', '股份有限公司'))}", taken)
        staff = [_unique(rng, lambda: rng.choice(_SURNAMES) + "".join(rng.choice(_GIVEN)
                                                                        for _ in range(rng.randint(1, 2))), taken)
                 for _ in range(2)]
        authors = [rng.choice(_GENERIC_AUTHORS) if rng.random() < 0.3 else name for name in staff]
        address = _unique(rng, lambda: f"{rng.choice((36, 58, 101, 112, 117, 183, 220, 222))}."
                                       f"{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}", taken)
        device = rng.choice(_BROWSERS).format(v=rng.randint(100, 130)) + f"; client={rng.getrandbits(64):016x}"
        documents = (
            DocumentFact(name="技术标/施工组织设计.docx", sha256=_digest(rng), size=rng.randint(60_000, 900_000),
                         text=bid_text(rng, rng.randint(1200, 3000)), metadata=_metadata(rng, authors[0])),
            DocumentFact(name="商务标/工程量清单报价.xlsx", sha256=_digest(rng), size=rng.randint(20_000, 300_000),
                         text=bid_text(rng, rng.randint(300, 900)), metadata=_metadata(rng, authors[1])),
            DocumentFact(name="资格/营业执照.jpg", sha256=_digest(rng), size=rng.randint(100_000, 2_000_000),
                         text=None, metadata={}),
        )
        bids.append(BidFacts(
            bid_id=first_id + i, bidder=company, organisation_id=first_id + 50 + i, lot=LOT, price=prices[i],
            upload_addresses=(address,), upload_devices=(device,),
            signer_key_id=hashlib.sha256(rng.getrandbits(256).to_bytes(32, "big")).hexdigest(),
            guarantee_payers=(f"6222{rng.randrange(10**14, 10**15)}",),
            project_manager=_unique(rng, lambda: f"苏{rng.randrange(10**10, 10**11)}", taken),
            documents=documents))
    return bids


def _with_prices(bids: list[BidFacts], prices: list[Decimal]) -> list[BidFacts]:
    return [replace(b, price=p) for b, p in zip(bids, prices, strict=True)]


def _edit(rng: random.Random, text: str, share: float) -> str:
    """A copy of ``text`` with about ``share`` of it rewritten in short pieces (names, numbers changed)."""
    chars = list(text)
    for _ in range(int(len(chars) * share / 3)):
        at = rng.randrange(len(chars))
        chars[at:at + 3] = rng.choice(WORDS)
    return "".join(chars)


def planted_tender(rng: random.Random, screen_code: str) -> list[BidFacts]:
    """A clean tender with one sign of ``screen_code`` planted between its first two bids (or in its prices)."""
    if screen_code not in CODES:
        raise ValueError(f"unknown screen {screen_code!r}")
    n = rng.randint(5, 12) if screen_code in ("kurtosis", "low_cv", "relative_distance", "skewness",
                                              "regular_spacing") else rng.randint(3, 12)
    bids = random_clean_tender(rng, n)
    a, b = bids[0], bids[1]
    if screen_code == "same_address":
        bids[1] = replace(b, upload_addresses=(*b.upload_addresses, a.upload_addresses[0]))
    elif screen_code == "same_device":
        bids[1] = replace(b, upload_devices=(a.upload_devices[0],))
    elif screen_code == "same_signer":
        bids[1] = replace(b, signer_key_id=a.signer_key_id)
    elif screen_code == "same_payer":
        bids[1] = replace(b, guarantee_payers=(a.guarantee_payers[0],))
    elif screen_code == "same_manager":
        bids[1] = replace(b, project_manager=a.project_manager)
    elif screen_code == "identical_document":
        bids[1] = replace(b, documents=(*b.documents, replace(a.documents[0], name="技术标/附件.docx")))
    elif screen_code == "similar_document":
        source = a.documents[0]
        copy = replace(source, sha256=_digest(rng), text=_edit(rng, source.text or "", rng.uniform(0.005, 0.03)),
                       metadata=_metadata(rng, "Administrator"))
        bids[1] = replace(b, documents=(copy, *b.documents[1:]))
    elif screen_code == "same_metadata":
        meta = dict(a.documents[0].metadata)
        meta["author"] = meta_author = "".join(rng.choice(_GIVEN) for _ in range(3))
        bids[0] = replace(a, documents=(replace(a.documents[0], metadata=meta), *a.documents[1:]))
        other = dict(b.documents[1].metadata, author=meta_author)
        bids[1] = replace(b, documents=(b.documents[0], replace(b.documents[1], metadata=other), *b.documents[2:]))
    else:
        bids = _with_prices(bids, planted_prices(rng, screen_code, n))
    return bids


def planted_prices(rng: random.Random, screen_code: str, n: int) -> list[Decimal]:
    """Cartel prices for a statistical screen: the designated winner and the cover bids (陪标)."""
    estimate = Decimal(rng.randrange(5_000, 500_000)) * 100
    centre = rng.uniform(0.02, 0.05)
    if screen_code == "low_cv":  # everyone quotes within a fraction of a per cent
        discounts = [centre + rng.gauss(0, 0.003) for _ in range(n)]
    elif screen_code in ("relative_distance", "skewness"):  # covers bunched, the winner well below them
        covers = [centre + rng.gauss(0, 0.004) for _ in range(n - 1)]
        discounts = [max(covers) + rng.uniform(0.04, 0.08), *covers]
    elif screen_code == "kurtosis":  # most quotes bunched, one or two far away
        discounts = [centre + rng.gauss(0, 0.003) for _ in range(n - 2)]
        discounts += [centre + rng.uniform(0.05, 0.08), centre - rng.uniform(0.0, 0.06)]
    elif screen_code == "regular_spacing":  # a price ladder
        step = rng.uniform(0.005, 0.02)
        discounts = [centre + i * step for i in range(n)]
    else:
        raise ValueError(f"{screen_code!r} is not a price screen")
    prices = [price_at(estimate, d) for d in discounts]
    rng.shuffle(prices)
    return prices

"""TeX math to typst math, for the subset the derivation (resources/elbo.md) and the reports use.

`tex_to_typst(r"\\frac{a}{b}")` is `"frac(a, b)"`. TeX's groups become typst's argument lists, its
sized delimiters (`\\left[`, `\\big(`) become plain ones (typst sizes matched delimiters itself),
and every output atom is separated by a space, so that TeX's `xz` (x times z) never reads as the
typst name `xz`. A command outside the subset raises TexError naming it: a report never typesets
silently wrong mathematics.
"""

from __future__ import annotations

import re

from vaezoo.core.errors import OutputError


class TexError(OutputError):
    """A TeX expression uses something the converter does not know."""


def _table(pairs: str) -> dict[str, str]:
    """`tex=typst` pairs separated by whitespace; a bare name maps to itself."""
    return dict((pair.split("=", 1) if "=" in pair[1:] else (pair, pair)) for pair in pairs.split())


#: commands that are one typst symbol or name (TeX's \phi is the straight one, typst's phi the curly one)
SYMBOLS = _table(
    """
    alpha beta gamma delta zeta eta theta iota kappa lambda mu nu xi pi rho sigma tau upsilon chi psi omega
    Gamma Delta Theta Lambda Xi Pi Sigma Phi Psi Omega phi=phi.alt varphi=phi epsilon=epsilon.alt
    varepsilon=epsilon vartheta=theta.alt ell infty=infinity nabla partial forall exists
    ge=>= geq=>= le=<= leq=<= ne=!= neq=!= to=-> rightarrow=-> leftarrow=<- mapsto=|-> approx sim=tilde.op
    propto=prop equiv in notin=in.not subset cup=union cap=sect times cdot=dot.op odot=dot.o pm=plus.minus
    dots=dots.h ldots=dots.h cdots=dots.h.c mid=mid(|) Vert=bar.v.double |=bar.v.double vert=bar.v
    langle=angle.l rangle=angle.r {=\\{ }=\\} %=% _=\\_ #=\\# &=\\&
    log ln exp min max sup inf lim det sin cos tan arg mod bmod=mod sum prod=product int=integral
    ,=thin :=med >=med ;=thick quad qquad=wide !=#h(-0.17em)
    """
)
SYMBOLS[" "] = "thick"  # "\ ", TeX's control space
#: commands of one argument that become a typst function of it
ONE_ARGUMENT = _table(
    "hat widehat=hat tilde bar=macron overline underline vec=arrow dot sqrt mathbf=bold boldsymbol=bold "
    "mathbb=bb mathcal=cal mathit=italic mathsf=sans"
)
FRACTIONS = {"frac": "frac({}, {})", "dfrac": "display(frac({}, {}))", "tfrac": "inline(frac({}, {}))"}
#: commands whose argument is text, set upright
TEXT = {"text": '"{}"', "textrm": '"{}"', "mathrm": '"{}"', "operatorname": 'op("{}")'}
SIZES = {"left", "right", "big", "Big", "bigg", "Bigg", "bigl", "bigr", "Bigl", "Bigr", "biggl", "biggr"}
#: characters typst math reads as syntax, written as literals
CHARACTERS = {"/": "\\/", ",": "\\,", ";": "\\;", '"': '\\"', "#": "\\#", "$": "\\$", "@": "\\@", "&": "\\&"}
_TOKEN = re.compile(r"\\[A-Za-z]+|\\.|\d+(?:\{,\}\d{3})*(?:\.\d+)?|\s+|.", re.DOTALL)


def tex_to_typst(tex: str) -> str:
    """One TeX math expression (no $ signs) as typst math; TexError for what is outside the subset."""
    return _Parser(tex).sequence(stop=None)


def _join(pieces: list[str]) -> str:
    """Atoms separated by spaces, except next to a quoted text: typst sets a space there as a space."""
    out = ""
    for piece in pieces:
        glued = not out or out.endswith('"') or piece.startswith('"') or not piece
        out += piece if glued else " " + piece
    return out


class _Parser:
    def __init__(self, tex: str) -> None:
        self.tex = tex
        self.tokens = [t for t in _TOKEN.findall(tex) if not t.isspace()]
        self.pos = 0

    def fail(self, why: str) -> TexError:
        return TexError(f"cannot typeset the TeX {self.tex.strip()[:60]!r}: {why}")

    def next(self) -> str:
        if self.pos >= len(self.tokens):
            raise self.fail("it ends too early")
        self.pos += 1
        return self.tokens[self.pos - 1]

    def sequence(self, stop: str | None) -> str:
        """Atoms up to `stop` (a closing brace) or the end, separated by spaces."""
        pieces: list[str] = []
        while self.pos < len(self.tokens):
            token = self.tokens[self.pos]
            if token == stop:
                self.pos += 1
                return _join(pieces)
            if token == "}":
                raise self.fail("an unmatched }")
            if token in ("^", "_"):
                self.pos += 1
                base = pieces.pop() if pieces else '""'
                pieces.append(f"{base}{token}({self.script()})")
            elif token in (r"\underbrace", r"\overbrace"):
                self.pos += 1
                pieces.append(self.brace(token[1:]))
            else:
                pieces.append(self.atom())
        if stop is not None:
            raise self.fail("an unclosed {")
        return _join(pieces)

    def group(self) -> str:
        """A {...} argument, or a single atom as TeX takes one without braces."""
        if self.pos < len(self.tokens) and self.tokens[self.pos] == "{":
            self.pos += 1
            return self.sequence(stop="}")
        return self.atom()

    def raw_group(self) -> str:
        """The literal text of a {...} argument (for \\text and \\mathrm)."""
        if self.next() != "{":
            raise self.fail("a text command without {...}")
        depth, start = 1, self.pos
        while depth:
            token = self.next()
            depth += {"{": 1, "}": -1}.get(token, 0)
        return "".join(self.tokens[start : self.pos - 1])

    def script(self) -> str:
        """A sub- or superscript: a group, or one character (TeX's x^23 is x^2 times 3)."""
        token = self.tokens[self.pos] if self.pos < len(self.tokens) else ""
        if re.fullmatch(r"\d{2,}.*", token):
            self.tokens[self.pos] = token[1:]
            return token[0]
        return self.group()

    def brace(self, name: str) -> str:
        body = self.group()
        mark = "_" if name == "underbrace" else "^"
        if self.pos < len(self.tokens) and self.tokens[self.pos] == mark:
            self.pos += 1
            return f"{name}({body}, {self.script()})"
        return f"{name}({body})"

    def atom(self) -> str:
        token = self.next()
        if token == "{":
            return self.sequence(stop="}") or '""'
        if not token.startswith("\\"):
            return self.character(token)
        name = token[1:]
        if name in SYMBOLS:
            return SYMBOLS[name]
        if name in SIZES:
            return self.delimiter()
        if name in ONE_ARGUMENT:
            return f"{ONE_ARGUMENT[name]}({self.group()})"
        if name in FRACTIONS:
            numerator = self.group()
            return FRACTIONS[name].format(numerator, self.group())
        if name in TEXT:
            text = self.raw_group()
            if not re.fullmatch(r"[A-Za-z0-9 .\-]*", text):
                raise self.fail(f"\\{name}{{{text}}} holds more than plain words")
            return TEXT[name].format(text)
        raise self.fail(f"\\{name} is not in the supported subset")

    def delimiter(self) -> str:
        """The delimiter after \\left, \\right or \\big: typst sizes a matched pair by itself."""
        token = self.next()
        if token == ".":
            return ""
        if token in "()[]|":
            return token
        if token.startswith("\\") and token[1:] in ("{", "}", "|", "Vert", "vert", "langle", "rangle"):
            return SYMBOLS[token[1:]]
        raise self.fail(f"{token!r} is not a delimiter")

    def character(self, token: str) -> str:
        if token[0].isdigit():
            return f'"{token.replace("{,}", ",")}"' if "{" in token else token
        if token.isalpha() or token in "+-=<>()[]|.:!'*":
            return token
        if token in CHARACTERS:
            return CHARACTERS[token]
        raise self.fail(f"the character {token!r} is not in the supported subset")

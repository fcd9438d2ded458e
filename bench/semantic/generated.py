"""Template-generated labelled pairs for the *tuning* split (see ``pairs``).

Each category crosses a few sentence frames with its own vocabulary. The held-out split
(``data/heldout.jsonl``) was written by hand before these templates and the verifier, in
other frames, and its swapped words are kept out of these lists (``pairs`` checks that no
word pair swapped in a held-out negative is swapped in a tuning pair).
"""

from __future__ import annotations

from itertools import pairwise

Pair = tuple[str, str, bool, str]

# -- hard negatives: one content word swapped for its opposite --------------------------------
ANTONYMS: list[tuple[str, str, str]] = [
    ("How do I {} a USB drive on Ubuntu?", "mount", "unmount"),
    ("How do I {} a package with npm?", "install", "uninstall"),
    ("How do I {} a port in the firewall?", "open", "close"),
    ("How do I {} the nginx service?", "start", "stop"),
    ("How do I {} changes from a remote branch?", "pull", "push"),
    ("How do I {} a user to a Linux group?", "add", "remove"),
    ("How do I {} a window with the keyboard?", "maximize", "minimize"),
    ("What is the {} wage in Germany?", "minimum", "maximum"),
    ("How do I get the {} element of an array in Ruby?", "first", "last"),
    ("How do I align text to the {} of a cell?", "top", "bottom"),
    ("How do I align an image to the {} in HTML?", "left", "right"),
    ("What causes {} blood sugar?", "high", "low"),
    ("Is it better to drink {} water after exercise?", "hot", "cold"),
    ("What plants grow well in {} soil?", "wet", "dry"),
    ("Why are some metals {} than others?", "heavier", "lighter"),
    ("Why are summer days {} than winter days?", "longer", "shorter"),
    ("How do I make my voice {} when singing?", "louder", "quieter"),
    ("How do I make a photo {} in GIMP?", "brighter", "darker"),
    ("Is it {} to fly or take the train across Europe?", "cheaper", "costlier"),
    ("How do I {} weight without dieting?", "gain", "lose"),
    ("How do I {} a meeting invitation in the calendar?", "accept", "decline"),
    ("How do I {} cookies in the browser?", "allow", "block"),
    ("How do I {} a debugger to a running process?", "attach", "detach"),
    ("How do I {} a Bluetooth speaker from my laptop?", "connect", "disconnect"),
    ("How do I {} from a mailing list?", "subscribe", "unsubscribe"),
    ("How do I {} an account on a social network?", "follow", "unfollow"),
    ("Why does it hurt when I {} deeply?", "inhale", "exhale"),
    ("How do I block {} traffic on a server?", "inbound", "outbound"),
    ("Why are my {} calls dropping?", "incoming", "outgoing"),
    ("How do I reset the {} branch of a fork?", "upstream", "downstream"),
    ("How do I center a div {} with flexbox?", "horizontally", "vertically"),
    ("How do I convert a string to {} in Go?", "uppercase", "lowercase"),
    ("How do I make a repository {} on the hosting site?", "public", "private"),
    ("How do I reach an {} service from a pod?", "internal", "external"),
    ("How do I {} a file over a socket?", "send", "receive"),
    ("How do I {} a binary file byte by byte?", "read", "write"),
    ("How do I {} an object to json in Rust?", "serialize", "deserialize"),
    ("How do I {} a url string?", "encode", "decode"),
    ("How long does it take to {} a turkey?", "freeze", "thaw"),
    ("How fast does a room {} with the window open?", "heat", "cool"),
    ("How do I {} a pdf into pages?", "split", "merge"),
    ("How do I {} a voice channel on the chat app?", "join", "leave"),
    ("How do I {} full screen mode in the player?", "enter", "exit"),
    ("When does the last train {} the station?", "arrive", "depart"),
    ("Can I {} money from a relative for a house?", "borrow", "lend"),
    ("What makes a {} team in football?", "winning", "losing"),
    ("How do I {} the brightness of my monitor?", "raise", "reduce"),
    ("Why is the tide {} in the evening?", "high", "low"),
    ("How do I {} a zip archive on a phone?", "create", "extract"),
    ("Why does my car pull to the {} when braking?", "left", "right"),
    ("How do I {} a table in a spreadsheet?", "freeze", "unfreeze"),
    ("What are the {} of nuclear power?", "benefits", "drawbacks"),
    ("What are the {} of a vegan diet?", "pros", "cons"),
    ("How do I {} the volume in the terminal?", "mute", "unmute"),
    ("How do I {} a row in a table with a click?", "select", "deselect"),
    ("Why is my dough too {}?", "sticky", "dry"),
    ("Why do stock prices {} after earnings?", "jump", "drop"),
    ("How do I {} a process to the background?", "send", "bring"),
    ("How do I {} a slide in the presentation?", "insert", "delete"),
    ("How do I {} a tab in the browser?", "pin", "unpin"),
    ("Why is my baby sleeping {} than usual?", "more", "less"),
    ("Is it safe to take ibuprofen on an {} stomach?", "empty", "full"),
    ("How do I {} the tension of a guitar string?", "tighten", "loosen"),
    ("Why do my eyes feel {} in the evening?", "dry", "watery"),
    ("How do I make the kernel {} verbose?", "more", "less"),
    ("How do I {} a user account on a server?", "enable", "suspend"),
    ("What should a {} tenant know about the lease?", "new", "former"),
    ("How do I {} my email account?", "log into", "log out of"),
    ("Why is the {} of my house so warm?", "attic", "basement"),
    ("Why does ice float on {} water?", "salty", "fresh"),
    ("How do I move the taskbar to the {} of the screen?", "top", "bottom"),
    ("What is the {} of a nation's budget?", "surplus", "deficit"),
    ("How do I {} my savings in a bad year?", "grow", "shrink"),
    ("How do I {} a contract before it ends?", "renew", "terminate"),
    ("What is the {} temperature for storing wine?", "lowest", "highest"),
    ("How do I {} a wall socket safely?", "install", "remove"),
]

# -- hard negatives: two members of one category ----------------------------------------------
SIBLINGS: list[tuple[list[str], list[str]]] = [
    (
        [
            "How do I implement a {} in C?",
            "When should I use a {} instead of a list?",
            "What is the time complexity of inserting into a {}?",
        ],
        [
            "stack",
            "deque",
            "linked list",
            "hash table",
            "binary heap",
            "trie",
            "skip list",
            "priority queue",
        ],
    ),
    (
        [
            "Explain how {} works.",
            "What is the worst-case complexity of {}?",
            "Write {} in Python.",
        ],
        [
            "quicksort",
            "merge sort",
            "heapsort",
            "bubble sort",
            "binary search",
            "radix sort",
            "breadth-first search",
            "depth-first search",
            "topological sort",
        ],
    ),
    (
        ["Write an {} about the moon.", "Write an {} about my grandmother."],
        ["ode", "acrostic poem", "epic poem", "epitaph", "aubade"],
    ),
    (
        ["Write a {} about the moon.", "Write a {} about my grandmother."],
        ["ballad", "villanelle", "tanka", "rhyming couplet", "free verse poem", "cinquain"],
    ),
    (
        ["How do I monitor {} on a server?", "What uses so much {} on my laptop?"],
        ["GPU memory", "swap space", "inodes", "open file descriptors", "bandwidth", "threads"],
    ),
    (
        ["What should I feed a pet {}?", "How long does a {} live?", "How do I bathe a {}?"],
        ["horse", "goat", "parrot", "turtle", "ferret", "guinea pig", "lizard", "pig"],
    ),
    (
        ["How many calories are in a {}?", "How do I know if a {} is ripe?"],
        ["pear", "mango", "peach", "kiwi", "plum", "avocado", "lemon"],
    ),
    (
        ["How do I grow {} in a pot?", "When should I plant {}?"],
        ["carrots", "spinach", "lettuce", "onions", "garlic", "potatoes", "peppers"],
    ),
    (
        ["How long does it take to learn the {}?", "What is the best age to start the {}?"],
        ["piano", "trumpet", "flute", "drums", "harp", "banjo", "saxophone", "clarinet"],
    ),
    (
        ["What are the basic rules of {}?", "How do I get better at {}?"],
        ["squash", "rugby", "cricket", "hockey", "golf", "handball", "table tennis", "water polo"],
    ),
    (
        ["What does the {} do in the body?", "What are signs of a problem with the {}?"],
        ["heart", "lungs", "spleen", "thyroid", "gallbladder", "bladder", "pancreas"],
    ),
    (
        ["How do I make a {} at home?", "How much caffeine is in a {}?"],
        ["mocha", "chai", "matcha", "flat white", "macchiato", "cortado"],
    ),
    (
        ["How much {} should an adult eat per day?", "Which foods are high in {}?"],
        ["fiber", "sugar", "iron", "vitamin C", "calcium", "sodium", "potassium", "zinc"],
    ),
    (
        ["How do I compute the {} of a column in pandas?", "What is the {} of a sample?"],
        ["variance", "standard deviation", "mode", "range", "skewness", "interquartile range"],
    ),
    (
        ["How do I drive safely in {}?", "How do I protect my garden from {}?"],
        ["rain", "snow", "hail", "fog", "wind", "frost"],
    ),
    (
        ["How do I paint {} furniture?", "How do I clean {} surfaces?"],
        ["wood", "metal", "glass", "plastic", "laminate", "stone"],
    ),
    (
        ["How do I wash a {} sweater?", "Does {} shrink in the dryer?"],
        ["cotton", "wool", "silk", "linen", "cashmere", "polyester"],
    ),
    (
        ["What is the area of a {}?", "How do I draw a {} in CSS?"],
        ["circle", "triangle", "square", "hexagon", "pentagon", "rectangle", "ellipse"],
    ),
    (
        ["How does the {} move in chess?", "When should I trade my {} in chess?"],
        ["knight", "bishop", "rook", "queen", "pawn", "king"],
    ),
    (
        ["What is the melting point of {}?", "Is {} a good conductor?"],
        ["copper", "aluminum", "zinc", "iron", "tin", "nickel", "lead"],
    ),
    (
        ["How do I unit test a {} in React?", "What is the lifecycle of a {} in React?"],
        ["component", "hook", "context", "reducer", "portal"],
    ),
    (
        ["How do I add a {} to a table in SQL?", "How do I drop a {} in SQL?"],
        ["column", "index", "constraint", "trigger", "foreign key", "primary key", "view"],
    ),
    (
        ["How do I write a {} for a job application?", "What should a good {} include?"],
        ["cover letter", "resume", "portfolio", "thank-you note", "reference letter"],
    ),
    (
        ["What is the difference between a {} and a lake?", "How is a {} formed?"],
        ["pond", "river", "lagoon", "reservoir", "glacier", "swamp"],
    ),
    (
        ["How do I treat a {} at home?", "How long does a {} take to heal?"],
        ["burn", "bruise", "blister", "cut", "splinter", "sunburn"],
    ),
    (
        ["How do I cook {} in the oven?", "How long should I boil {}?"],
        ["salmon", "chicken thighs", "pork chops", "shrimp", "tofu", "lamb"],
    ),
    (
        ["What is a {} in music theory?", "How do I play a {} on guitar?"],
        ["chord", "scale", "arpeggio", "triad", "interval"],
    ),
    (
        ["How do I fix a {} in my bike?", "How much does it cost to replace a {}?"],
        ["chain", "brake cable", "derailleur", "spoke", "pedal", "inner tube"],
    ),
    (
        ["How do I configure a {} in Kubernetes?", "When should I use a {} in Kubernetes?"],
        ["deployment", "daemonset", "statefulset", "cronjob", "service account", "config map"],
    ),
    (
        ["What is the {} of a company?", "How do I calculate the {} of a business?"],
        ["revenue", "profit margin", "net income", "cash flow", "market cap", "gross margin"],
    ),
]

# -- paraphrases -----------------------------------------------------------------------------
TOPICS = [
    "a mutual fund",
    "compound interest",
    "a hedge fund",
    "photosynthesis",
    "plate tectonics",
    "a lunar eclipse",
    "a leap year",
    "supply and demand",
    "the greenhouse effect",
    "a load balancer",
    "a reverse proxy",
    "a deadlock",
    "garbage collection",
    "a race condition",
    "dependency injection",
    "an enzyme",
    "a placebo",
    "a sonnet",
    "impressionism",
    "a tariff",
    "a credit union",
    "a blockchain",
    "a firewall",
    "cognitive dissonance",
    "a haiku",
    "an annuity",
    "a recession",
    "a vaccine",
    "an allergy",
    "osmosis",
    "a black hole",
    "entropy",
    "a mortgage broker",
    "a bear market",
    "a time zone",
    "a food chain",
]
HOW = ["{} work", "{} affect the economy"]
GOALS = [
    "bake a loaf of bread",
    "change a car tire",
    "plant a tree",
    "paint a bedroom",
    "fix a running toilet",
    "clean a laptop keyboard",
    "make cold brew coffee",
    "learn to juggle",
    "start a vegetable garden",
    "train a dog to sit",
    "write a wedding speech",
    "prepare for a marathon",
    "reduce screen time",
    "sharpen a kitchen knife",
    "set up a home network",
    "remove rust from tools",
    "save money on groceries",
    "read a stock chart",
    "build a bookshelf",
    "unclog a bathroom sink",
    "memorize a speech",
    "make a budget spreadsheet",
    "wash a wool blanket",
    "descale a kettle",
    "fall asleep faster",
    "improve my posture",
    "get rid of ants",
    "write a haiku",
    "prune a rose bush",
    "care for a bonsai",
    "make pizza dough",
    "restore an old photo",
]
# (question, rewording): the request reworded, the content kept.
TOPIC_FRAMES = [
    ("What is {}?", "Can you explain what {} is?"),
    ("What is {}?", "Explain {}."),
    ("What is {}?", "Tell me about {}."),
    ("What is {}?", "Define {}."),
    ("What is {}?", "I'd like to know what {} is."),
    ("Explain {} in simple terms.", "What is {}, in simple terms?"),
]
GOAL_FRAMES = [
    ("How do I {}?", "How can I {}?"),
    ("How do I {}?", "What's the best way to {}?"),
    ("How do I {}?", "Tell me how to {}."),
    ("How do I {}?", "I want to {}. How do I do it?"),
    ("How do I {}?", "Show me how to {}."),
    ("How do I {}?", "What are the steps to {}?"),
    ("How should I {}?", "Explain how to {}."),
    ("I have never done this before. How do I {}?", "How do I {}? I have never done it before."),
]
# Synonym-only rewordings: one word for another with the same sense in that frame.
SYNONYMS: list[tuple[str, str, str]] = [
    ("How do I {} a website with Django?", "make", "build"),
    ("How do I {} a new folder in Windows?", "create", "make"),
    ("What is the best {} for a family of five?", "car", "automobile"),
    ("What is a good {} to watch tonight?", "movie", "film"),
    ("How do I clean a leather {}?", "couch", "sofa"),
    ("What time does the {} open on Sunday?", "shop", "store"),
    ("What is the {} way to learn typing?", "simplest", "easiest"),
    ("Why is my dog so {}?", "tired", "sleepy"),
    ("How {} is a blue whale's heart?", "huge", "enormous"),
    ("How do I {} a tutor for calculus?", "find", "locate"),
    ("Can you {} me write a poem?", "help", "assist"),
    ("What documents do I {} to rent an apartment?", "need", "require"),
    ("How do I {} hidden files on a Mac?", "show", "display"),
    ("How do I {} a copy of my birth certificate?", "get", "obtain"),
    ("How do I {} a sentence with a preposition?", "end", "finish"),
    ("How can I {} more confidently in meetings?", "speak", "talk"),
    ("How do I {} to an email politely?", "reply", "respond"),
    ("How do I print a {} from my phone?", "photo", "picture"),
    ("How often is the {} collected?", "garbage", "trash"),
    ("Where should I go on {} in July?", "vacation", "holiday"),
    ("How do I plan a long {} by car?", "trip", "journey"),
    ("Should I go to work if I feel {}?", "sick", "ill"),
    ("Are crows really {} birds?", "smart", "intelligent"),
    ("How {} should I water succulents?", "often", "frequently"),
    ("How do I {} my car's oil level?", "check", "inspect"),
    ("What is the {} of a good essay?", "structure", "layout"),
    ("How do I {} a python script from cron?", "run", "execute"),
    ("How do I {} an issue with my printer?", "solve", "resolve"),
    ("How can I {} my typing speed?", "improve", "boost"),
    ("How do I {} a form on a website?", "submit", "send"),
    ("What are {} signs of burnout?", "common", "typical"),
    ("How do I {} the sound on a video?", "mute", "silence"),
    ("What is the {} way to store coffee beans?", "best", "ideal"),
    ("How do I {} a Docker image size?", "reduce", "shrink"),
    ("How do I {} a lost cat?", "find", "track down"),
    ("How do I {} a piece of paper into thirds?", "fold", "crease"),
    ("Which {} is best for a beginner photographer?", "camera", "cam"),
    ("What is the {} of a car engine?", "purpose", "function"),
    ("How do I {} a rusty bolt?", "loosen", "undo"),
    ("How do I {} a hole in drywall?", "patch", "repair"),
]
ORDINALS = [
    ("first", "1st", "1"),
    ("second", "2nd", "2"),
    ("third", "3rd", "3"),
    ("fourth", "4th", "4"),
    ("fifth", "5th", "5"),
    ("sixth", "6th", "6"),
    ("seventh", "7th", "7"),
    ("eighth", "8th", "8"),
    ("ninth", "9th", "9"),
    ("tenth", "10th", "10"),
]
ORDINAL_FRAMES = [
    ("Who won the {w} series of the baking contest?", "Who won series {d} of the baking contest?"),
    (
        "What is the {w} step of the scientific method?",
        "What is the {o} step of the scientific method?",
    ),
    ("Summarise chapter {d} of the novel.", "Summarise the {w} chapter of the novel."),
    ("What happens in the {o} book of the trilogy?", "What happens in book {d} of the trilogy?"),
]
CODE = [
    "x = [i * 2 for i in range(5)]",
    "git stash pop",
    "docker run -it --rm alpine sh",
    "arr.filter(Boolean)",
    "SELECT COUNT(*) FROM orders GROUP BY user_id",
    "kubectl rollout undo deployment/web",
    "for (;;) {}",
    "tar -czf out.tgz dir/",
    "std::move(v)",
    "df.groupby('a').sum()",
    "ps aux | grep nginx",
    "let x: &mut i32 = &mut y;",
]
CODE_FRAMES = [
    ("What does `{}` do?", "Explain what `{}` does."),
    ("Can you explain `{}`?", "What is `{}` doing?"),
]
# Code differing in one operator or flag: a different question.
CODE_SWAPS = [
    ("x += 1", "x -= 1"),
    ("a && b", "a || b"),
    ("rm -r dir", "rm -f dir"),
    ("git reset --soft HEAD~1", "git reset --hard HEAD~1"),
    ("i++", "i--"),
    ("x << 2", "x >> 2"),
    ("a == b", "a != b"),
    ("INNER JOIN t", "LEFT JOIN t"),
    ("grep -i foo", "grep -v foo"),
    ("chmod 644 f", "chmod 600 f"),
    ("a / b", "a // b"),
    ("list.pop(0)", "list.pop()"),
]
NAME_ALIASES = [
    ("What is the GDP of the US?", "What is the GDP of America?"),
    ("Who is the king of Britain?", "Who is the king of Great Britain?"),
    ("How do I set a variable in JS?", "How do I set a variable in JavaScript?"),
    ("What is the tallest peak in the U.S.?", "What is the tallest peak in the United States?"),
    ("What caused WWI?", "What caused World War I?"),
    ("How do I use TS generics?", "How do I use TypeScript generics?"),
    ("What is the history of the USSR?", "What is the history of the Soviet Union?"),
    ("What is the weather like in LA in May?", "What is the weather like in Los Angeles in May?"),
]


def _swap(frame: str, x: str, y: str, group: str, same: bool) -> Pair:
    return frame.format(x), frame.format(y), same, group


def pairs() -> list[Pair]:
    out: list[Pair] = []
    for frame, x, y in ANTONYMS:
        out.append(_swap(frame, x, y, "antonym", False))
    for frames, words in SIBLINGS:
        for frame in frames:
            for x, y in pairwise(words):
                out.append(_swap(frame, x, y, "sibling", False))
    for i, topic in enumerate(TOPICS):
        for j, (a, b) in enumerate(TOPIC_FRAMES):
            if (i + j) % 3 == 0:
                out.append((a.format(topic), b.format(topic), True, "imperative"))
        if i % 2 == 0:
            plural_free = topic.split(" ", 1)[-1] if topic.startswith(("a ", "an ")) else topic
            out.append((f"How does {topic} work?", f"Explain how {plural_free} works.", True,
                        "imperative"))  # fmt: skip
    for i, goal in enumerate(GOALS):
        for j, (a, b) in enumerate(GOAL_FRAMES):
            if (i + j) % 2 == 0:
                group = "multisentence" if "." in a[:-1] or ". " in b else "paraphrase"
                out.append((a.format(goal), b.format(goal), True, group))
    for frame, x, y in SYNONYMS:
        out.append(_swap(frame, x, y, "synonym", True))
    for w, o, d in ORDINALS:
        for a, b in ORDINAL_FRAMES:
            out.append((a.format(w=w, o=o, d=d), b.format(w=w, o=o, d=d), True, "ordinal"))
    for (w, _, _), (_, _, d2) in pairwise(ORDINALS):
        out.append(
            (
                f"What is the {w} step of the scientific method?",
                f"What is step {d2} of the scientific method?",
                False,
                "number",
            )
        )
    for code in CODE:
        for a, b in CODE_FRAMES:
            out.append((a.format(code), b.format(code), True, "code"))
    for x, y in CODE_SWAPS:
        for a, _ in CODE_FRAMES:
            out.append((a.format(x), a.format(y), False, "code-neg"))
        out.append((f"Why is {x} slow?", f"Why is {y} slow?", False, "code-neg"))
    for a, b in NAME_ALIASES:
        out.append((a, b, True, "namesyn"))
    return out

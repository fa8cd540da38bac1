"""Other projects' grader test cases, transcribed as data and run against reward.py.

Each case is (source, pred or response, gold, peer's expectation), with source = "repo file". The
peers' code is not copied, only their cases; a very long response is abridged to its last part
(where the answer is) and marked so in tests/grader_disagreements.md. Where we decide otherwise than
the peer, OURS holds our expectation and the document says why; the test asserts OUR expectation,
and test_agreement checks that we agree with the peers on at least 95% of the cases in scope.

    ANSWERS    is_equiv(pred, parse_gold(gold)), both ways: two answers already extracted
    RESPONSES  math_reward(response, gold, mode="flexible"): a whole response, as the peer's parser
               sees it (Math-Verify reads any LaTeX in it); strict mode may only ever score lower
    EXTRACTS   extract_answer(text) in strict mode against the peer's extracted answer
"""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from reward import extract_answer, is_equiv, math_reward, parse_gold  # noqa: E402

HENDRYCKS = "hendrycks/math modeling/math_equivalence_test.py"
NEMO = "NVIDIA/NeMo-Skills tests/test_math_equal.py"
TUNIX = "google/tunix tests/utils/math_utils_test.py"
VERL = "volcengine/verl tests/utils/reward_score/test_numeric_canonicalization_on_cpu.py"
OPENR1 = "huggingface/open-r1 tests/test_rewards.py"
MV = "huggingface/Math-Verify tests/test_all.py"
MV_YU = "huggingface/Math-Verify tests/test_yujianll.py"
MV_MIXED = "huggingface/Math-Verify tests/test_mixed_number_extraction.py"
MV_SPAN = "huggingface/Math-Verify tests/test_failed_latex_span.py"

ANSWERS = [
    # hendrycks/math: the original MATH is_equiv
    (HENDRYCKS, r"\tfrac{1}{2} + \frac1{72}", r"\\frac{1}{2} + 2/3", False),
    (HENDRYCKS, "10, 4, -2", "4, 10, -2", False),
    (HENDRYCKS, "10, 4, 2", "4, 12, 2", False),
    (HENDRYCKS, r"\tfrac{1}{2} +\! \frac1{72}", r"\\dfrac{1}{2} +\frac{1}{72}", True),
    (HENDRYCKS, r"10\text{ units}", "10 ", True),
    (HENDRYCKS, r"10\text{ units}", "100 ", False),
    (HENDRYCKS, "10", r"\$10", True),
    (HENDRYCKS, r"\left(x-2\right)\left(x+2\right)", "(x-2)(x+2)", True),
    (HENDRYCKS, "0.1, 4, 2", "4, .1, 2", False),
    (HENDRYCKS, "0.1", ".1", True),
    (HENDRYCKS, r"10\%", "10", True),
    (HENDRYCKS, r"10\sqrt{3} + \sqrt4", r"10\sqrt3 + \sqrt{4}", True),
    (HENDRYCKS, r"\frac34i", r"\frac{3}{4}i", True),
    (HENDRYCKS, r"\tfrac83", r"\frac{8}{3}", True),
    (HENDRYCKS, "5x - 7y + 11z + 4 = 0", "x + y - z + 2 = 0", False),
    (HENDRYCKS, "1/2", r"\frac{1}{2}", True),
    # NVIDIA/NeMo-Skills: math_equal, checked both ways
    (NEMO, "5", "5", True), (NEMO, "5", "5.0", True), (NEMO, "1/2", "0.5", True), (NEMO, r"\frac{1}{2}", "0.5", True),
    (NEMO, r"918\frac{1}{2}", "918.5", True), (NEMO, "x^2+2x+1", "x^2 + 2*x + 1", True),
    (NEMO, "x^2+2x+1", "x^2 + 2*x - (-1)", True), (NEMO, "y = x^2+2x+1", "2x+ 1+x^2", True),
    (NEMO, "odd", r"\text{odd}", True), (NEMO, "E", r"\mathrm{E}", True), (NEMO, "A", r"\textbf{A}", True),
    (NEMO, "f'", "f'", True), (NEMO, "185", "185\\", True), (NEMO, "185\\", "185\\", True), (NEMO, ".185", "0.185", True),
    (NEMO, r"\frac {1}{2}", "0.5", True), (NEMO, r"17\text{ any text}", "17", True), (NEMO, r"\$10", "10", True),
    (NEMO, "10%", "10", True), (NEMO, r"10\%", "10", True), (NEMO, "2.5", r"\frac{5}{2}", True),
    (NEMO, r"\frac{1}{3}", r"\dfrac{1}{3}", True), (NEMO, "(r+5)(r+5)", "(r+5)^2", True),
    (NEMO, r"\frac{\sqrt{3}}{3}", r"\frac{\sqrt{3}}{3} \approx 0.577", True), (NEMO, "C", "C. x = 42", True),
    (NEMO, r"\begin{pmatrix}0&0&0\\0&1&0\\0&0&1\end{pmatrix}",
     r"\begin{bmatrix} 0 & 0 & 0 \\ 0 & 1 & 0 \\ 0 & 0 & 1 \end{bmatrix}", True),
    (NEMO, "5", "5.001", False), (NEMO, "0", None, False), (NEMO, "x^2+2x+1", "x^3+2x+1", False),
    (NEMO, "odd", r"\text{oddd}", False), (NEMO, "E", r"\mathrm{E}*2", False),
    (NEMO, r"\sqrt{67},-\sqrt{85}", r"\sqrt{67}", False),
    # google/tunix: mathd_normalize_answer(x) == y read as "x and y are the same answer", then the
    # comma, mixed-number and sympy-grading helpers
    (TUNIX, "42", "42", True), (TUNIX, "  42  ", "42", True), (TUNIX, r"\text{hello}", "hello", True),
    (TUNIX, r"\frac12", r"\frac{1}{2}", True), (TUNIX, r"\dfrac{1}{2}", r"\frac{1}{2}", True),
    (TUNIX, r"\tfrac{1}{2}", r"\frac{1}{2}", True), (TUNIX, r"\left(x\right)", "(x)", True),
    (TUNIX, r"90^{\circ}", "90", True), (TUNIX, r"\$100", "100", True), (TUNIX, r"50\%", "50", True),
    (TUNIX, ".5", "0.5", True), (TUNIX, "1/2", r"\frac{1}{2}", True), (TUNIX, "0.5", r"\frac{1}{2}", True),
    (TUNIX, r"\sqrt2", r"\sqrt{2}", True), (TUNIX, "x = 5", "5", True),
    (TUNIX, "1,000", "1000", True), (TUNIX, "1,000,000", "1000000", True), (TUNIX, "1234", "1234", True),
    (TUNIX, "a,b", "a,b", True), (TUNIX, "7 3/4", "7+3/4", True), (TUNIX, "3/4", "3/4", True),
    (TUNIX, "42", "42", True), (TUNIX, "0.5", "1/2", True), (TUNIX, "3", "4", False), (TUNIX, "", "42", False),
    (TUNIX, "2*x", "x+x", True), (TUNIX, "(1, 2)", "(1, 2)", True), (TUNIX, "(1, 2)", "[1, 2]", False),
    (TUNIX, "(1, 2)", "(1, 2, 3)", False), (TUNIX, "5", "5", True), (TUNIX, "x+x", "2*x", True), (TUNIX, "3", "4", False),
    # volcengine/verl: integer canonicalisation, and is_equiv on a gold taken out of its box
    (VERL, "033", "33", True), (VERL, "+033", "33", True), (VERL, "-0", "0", True), (VERL, "000", "0", True),
    (VERL, "33", r"\boxed{033}", True), (VERL, "33", r"\boxed{+033}", True), (VERL, "0", r"\boxed{-0}", True),
    (VERL, "0", r"\boxed{000}", True),
    # huggingface/Math-Verify: answers that are a bare LaTeX span (gold first in their tuples, here second)
    (MV, r"\frac{10}{9}", "10/9", True), (MV, r"-\frac{10}{9}", "-10/9", True),
    (MV, "$[0,1)$", "$[0,1)$", True), (MV, "$[0,1)$", "$[0,9)$", False), (MV, "$[0,9)$", "$(0,9)$", False),
    (MV, "$-[0,1)$", "$1$", False),
    (MV, r"$\frac13 $", "$1/3$", True), (MV, r"$\frac3{3} $", "$1$", True), (MV, r"$\sqrt3 $", r"$\sqrt{3}$", True),
    (MV, r"$\cfrac{1}{3} $", "$1/3$", True), (MV, r"$\dfrac{1}{3} $", "$1/3$", True), (MV, r"$\tfrac{1}{3} $", "$1/3$", True),
    (MV, "$ 1/3 $", "$1/3$", True), (MV, r"$\left( \frac{1}{3} \right)$", "$1/3$", True),
    (MV, r"$\boxed{\frac{1}{3}}$", "$1/3$", True), (MV, r"$\frac{1}{3} \text{meters}$", "$1/3$", True),
    (MV, r"$\frac{1}{3} \textbf{meters}$", "$1/3$", True), (MV, r"$k = \frac{1}{3}$", "$1/3$", True),
    (MV, "28 percent", r"$28\%$", True), (MV, "28 pct", r"$28\%$", True), (MV, "28 %", r"$28\%$", True),
    (MV, "$28$ %", r"$28\%$", True), (MV, "$28$ percent", r"$28\%$", True), (MV, r"$\boxed{28 pct}", r"$28\%$", True),
    (MV, r"$\boxed{28 percent}", r"$28\%$", True), (MV, r"$\boxed{28 percentage}", r"$28\%$", True),
    (MV, "28", r"$28\%$", True), (MV, "28", "$0.28$", False), (MV, "28", "$28/100$", False),
    (MV, "28/100", "$28$", False), (MV, "28", r"$\frac{28}{100}$", False), (MV, "28", r"$28*\frac{1}{100}$", False),
    (MV, r"x \in \boxed{\{-1\} \cup [0,7)}.$", r"x \in \boxed{\{-1\} \cup [0,7)}.$", True),
    (MV, r"$x \geq 5$", "$x >= 5$", True), (MV, r"$x \lt 3$", "$x < 3$", True), (MV, "$x <= 2$", r"$x \leq 2$", True),
    (MV, r"$x \gt 5$", "$x > 5$", True), (MV, r"$x \neq 3$", "$x != 3$", True), (MV, "$x < 5$", "$x > 5$", False),
    (MV, r"$x \leq 5$", r"$x \geq 5$", False), (MV, "$x != 5$", r"$x \neq 5$", True),
    (MV, r"$5 \geq x$", r"$x \leq 5$", True), (MV, r"$5 \leq x$", r"$x \geq 5$", True),
    (MV, "$x = 5+5+1 = 7 =11$", "$x = 11$", True), (MV, "$11a+c$", "$7 = 11a+c$", False),
    (MV, r"$x = 5+5+1 = 1/3 \approx 11$", "$x = 1/3$", True), (MV, "$x=11$", "$11$", True),
    (MV, r"$x\approx11$", "$11$", True), (MV, r"$x=1/3\approx1.3$", "$1/3$", True), (MV, "$-x > -1$", "$x < 1$", True),
    (MV, "$x > -1$", "$x < 1$", False), (MV, "$-x >= -1$", "$x <= 1$", True), (MV, "$0$", "$a +3z = 0$", False),
    (MV, "$0$", r"$1 = \zzz = x = 0$", True), (MV, "$1$", "$2x + z = 1$", False), (MV, "$0$", "$a^2 + b = 0$", False),
    (MV, "$1$", "$k=1$", True), (MV, "$k=1$", "$1$", True), (MV, "$z = 3+3 = 2$", "$z = 1 + 1 = 2$", True),
    (MV, r"$y=-\frac{1}{2}x+\frac{3}{4}$", "$2x+4y-3=0$", True),
    (MV, "$x^2/16 + y^2/12 = 1/4$", "$x^2/4 + y^2/3 = 1$", True),
    (MV, "0.3333$", r"$\frac{1}{3}$", True),
    (MV, "$0.0833333333333333$", r"$\frac{1}{12}$", True), (MV, "$(1,4.5)$", r"$(1,\frac{9}{2})$", True),
    (MV, r"$\frac{x}{7}+\frac{2}{7}$", r"$\frac{x+2}{7}$", True), (MV, r"$\sec^2(y)$", r"$\tan^2(y)+1$", True),
    (MV, r"$\begin{pmatrix}-\frac{7}{4}&-2\\4&\frac{1}{4}\\\end{pmatrix}$",
     r"$\begin{pmatrix}-\frac{7}{4}&-2\\4&\frac{1}{4}\\\end{pmatrix}$", True),
    (MV, r"$\begin{pmatrix}\frac{1}{3x^{2/3}}&0&0\\0&1&0\\-\sin(x)&0&0\end{pmatrix}$",
     r"$\begin{pmatrix}\frac{1}{3\sqrt[3]{x}^2}&0&0\\0&1&0\\-\sin(x)&0&0\\\end{pmatrix}$", True),
    (MV, "$-34x-45y+20z-100=0$", "$34x+45y-20z+100=0$", True),
    (MV, r"$\begin{pmatrix}0.33\\0.2 \end{pmatrix}$", r"$(\begin{pmatrix}\frac{1}{3}\\ \frac{1}{5} \end{pmatrix})$", True),
    (MV, r"$\frac{\sqrt{\sqrt{11}+\sqrt{194}}}{2\sqrt{33}+15}$", r"$\frac{\sqrt{\sqrt{11}+\sqrt{194}}}{15+2\sqrt{33}}$", True),
    (MV, "$(+5)(b+2)$", "$(a+5)(b+2)$", False), (MV, r"$\frac{1+\sqrt{5}}{2}$", "$2$", False),
    (MV, r"$\frac{34}{16}+\frac{\sqrt{1358}}{16}$", "$4$", False), (MV, "$1$", r"$1\sqrt{19}$", False),
    (MV, "$(0.6,2.6667]$", r"$(\frac{3}{5},\frac{8}{3}]$", True), (MV, "$x+1$", "$x+2n+1$", False),
    (MV, "$x \\in [-2,7]$", "$-2 \\le x \\le 7$", True), (MV, "$-2 \\le x \\le 7$", "$x \\in [-2,7]$", True),
    (MV, r"${1,3}$", r"$(3,1)$", False), (MV, r"${1,3}$", r"$(1,3)$", True),
    (MV, r"$\sqrt{17}$", "4.123105625617661", True), (MV, r"$4\sqrt{2}$", "$4$", False), (MV, "$13$", "$\text{13}$", False),
    (MV, r"$\frac{1}{3}.$", r"$\frac{1}{3}$", True), (MV, r"$$\frac{1}{3}.$$", r"$\frac{1}{3}$", True),
    (MV, r"\[\frac{1}{3}.\]", r"$\frac{1}{3}$", True), (MV, r"$\frac{1}{3},$", r"$\frac{1}{3}$", True),
    (MV, r"$\frac{1}{3} .$", r"$\frac{1}{3}$", True), (MV, r"$\sqrt{2}.$", r"$\sqrt{2}$", True), (MV, "$(1,2).$", "$(1,2)$", True),
    (MV, r"$5 \text{ cm}.$", "$5$", True), (MV, "$42.$", "$42$", True), (MV, "$2^{10}.$", "$2$", False),
    (MV, "$1, 2, 3, ...$", "$1, 2, 3$", False), (MV, "$E$", r"$\text{E}$", True), (MV, r"$\boxed{1,2}$", r"$\boxed{1}\boxed{2}$", True),
    (MV, r"is $\boxed{11,\! 111,\! 111,\! 100}$", r" So the answer is: \[ \boxed{11111111100} \]", True),
    (MV, r"is $\boxed{32,\! 349}$", r" So the answer is: \[ \boxed{32349} \]", True),
    (MV, r"is $\boxed{32, 349}$", r" So the answer is: \[ \boxed{32349} \]", False),
    (MV, r"$\boxed{\text{(C)}}.$", r"\(\boxed{\text{C}}\).", True),
    (MV, r"Thus, the answer is $x \in \boxed{(2,12) \cup (12,102)}$",
     r"Thus, the domain of the function \( f(x) \) is: \[ \boxed{(2, 12) \cup (12, 102)} \]", True),
    # huggingface/Math-Verify: yujianll's string cases
    (MV_YU, "$n=1, 2, 3$", "$n=1, 2, 3$", True), (MV_YU, "$n=1, 2, 3$", "$n=2, 3, 4$", False),
    (MV_YU, "$D = (0, 1)$", "$D = (0, 1)$", True), (MV_YU, "$D = (0, 1.5)$", "$D = (0, 1)$", False),
    (MV_YU, r"$F_n = \sum_{k=0}^{n-2} F_k F_{n-k-2}$", r"$F_n = \sum_{k=0}^{n-1} F_k F_{n-k-1}$", False),
    (MV_YU, r"$F_n = \sum_{k=0}^{n-1} F_{n-k-1} F_k$", r"$F_n = \sum_{k=0}^{n-1} F_k F_{n-k-1}$", True),
    (MV_YU, r"$19, 46, \text{ and } 82$", "$19, 46, and 82$", True), (MV_YU, "$21, 36, and 82$", "$19, 46, and 82$", False),
    (MV_YU, r"$1 - \frac{1}{\mathrm{e}}$", r"$1 - \frac{1}{\mathrm{e}}$", True),
    (MV_YU, r"$1 + \frac{1}{\mathrm{e}}$", r"$1 - \frac{1}{\mathrm{e}}$", False),
    (MV_YU, "$2021$", r"$\pm 2021$", False), (MV_YU, "${-2021, 2021}$", r"$\pm 2021$", True),
    (MV_YU, "$1:00$", "$12:00$", False), (MV_YU, "$12:00$", "$12:00$", True),
    # huggingface/Math-Verify: mixed numbers (their parse() value compared with ours)
    (MV_MIXED, "4 4/9", "40/9", True), (MV_MIXED, "-4 4/9", "-40/9", True), (MV_MIXED, "11 5/6", "71/6", True),
    (MV_MIXED, "+11 5/6", "71/6", True), (MV_MIXED, "0 4/9", "4/9", True), (MV_MIXED, "4 0/9", "4", True),
    (MV_MIXED, "1 000 4/9", "9004/9", True),
    (MV_MIXED, "4 4/0", "4", False), (MV_MIXED, "4 4/0", "0", False), (MV_MIXED, "4 0/0", "4", False),
    (MV_MIXED, "0 0/0", "0", False), (MV_MIXED, "11 6/6", "12", False), (MV_MIXED, "11 6/6", "11", False),
    (MV_MIXED, "11 7/6", "73/6", False), (MV_MIXED, "11 7/6", "11", False),
    (MV_MIXED, "11/10 4/9", "139/90", False), (MV_MIXED, "11.0 4/9", "103/9", False),
    (MV_MIXED, "(11) 4/9", "103/9", False), (MV_MIXED, "11 + 4/9", "103/9", True), (MV_MIXED, "11 - 4/9", "95/9", True),
    (MV_MIXED, "11 + 4/9", "11 - 4/9", False), (MV_MIXED, "4 4/9%", "40/900", True), (MV_MIXED, "4 4/9 %", "40/900", True),
    (MV_MIXED, "4 4/9percent", "40/900", True), (MV_MIXED, "4 4/9 percent", "40/900", True),
    (MV_MIXED, "4 + 4/9", "40/9", True), (MV_MIXED, "10/2", "5", True), (MV_MIXED, "1 000", "1000", True),
    (MV_MIXED, "$5.00", "5", True), (MV_MIXED, "28%", "7/25", True),
]

RESPONSES = [
    # open-r1: accuracy_reward on a boxed completion
    (OPENR1, r"\boxed{\frac{63}{400}}", r"\frac{63}{400}", True),
    (OPENR1, r"\boxed{\frac{64}{400}}", r"\frac{63}{400}", False),
    # Math-Verify, number extraction from free text ("expr" targets)
    (MV, "-5", "-5", True), (MV, "7,425,000", "7425000", True), (MV, "1 000", "1000", True),
    (MV, "1000.0", "1000", True), (MV, "1,000.0", "1000.0", True), (MV, "1000,99", "1000.99", True),
    (MV, "1.22", "1,22", True), (MV, "Soucis : 2,74 $ a..", "2.74", True), (MV, ".4", "0.4", True),
    (MV, "1,000.99", "1000.99", True), (MV, "$1,000.99", "1000.99", True), (MV, "1,000.99$", "1000.99", True),
    (MV, "the number is not 10 which is 1,000.99€", "1000.99", True),
    (MV, "so the number is 10 which is 1,000.99m²", "1000.99", True),
    (MV, "not it's not 10 it's 1,000.99m²", "1000.99", True), (MV, "0.111", "0,111", True), (MV, "AZYUK2A", "2", False),
    # Math-Verify, LaTeX spans after "Answer"
    (MV, r"Answer \[ 9 \]", "$9$", True), (MV, "Answer $ 9 $", "$9$", True), (MV, "Answer $$ 9 $$", "$9$", True),
    (MV, r"Answer \( 9 \)", "$9$", True), (MV, r"Answer \( (9+1) \)", "$10$", True),
    (MV, "Answer $ \n 9 \n $", "$9$", False), (MV, "Answer \\( \n 9 \n \\)", "$9$", False),
    (MV, "Answer \\[ \n 9 \n \\]", "$9$", True), (MV, "Answer $$ \n 9 \n $$", "$9$", True),
    (MV, r"Answer $ \frac{1}{2} \$ = \frac{10}{9} $", "$10/9$", True),
    (MV, r"$\boxed{28}$ pct", r"$28\%$", True),
    # Math-Verify, MATH solutions as responses
    (MV, r"If $2-x=p$, then $x=2-p$. Thus $x-p=\boxed{2-2p}$.", "$2-2p$", True),
    (MV, "\\boxed{\n\\begin{pmatrix} 0 & 3 \\\\ 0 & -1 \\end{pmatrix}\n}.\n\\end{align*}",
     "\\boxed{\n\\begin{pmatrix} 0 & 3 \\\\ 0 & -1 \\end{pmatrix}\n}.\n\\end{align*}", True),
    (MV, r"its value becomes $.8\cdot .9x = .72x$, making for a total loss of $\boxed{28\%}$.",
     r"(abridged) The overall percent loss in value is $100 \% - 72 \%=28 \%$. Final Answer: The final answer is $28 \%$. I hope it is correct. Note: The solution provided is incorrect.", True),
    (MV, r"(abridged) the smallest possible value for $N$ is $N = 14 {, }916$. This number is divisible by both 3 and 4, and thus by 12. Final Answer: The final answer is $14 {, }916$. I hope it is correct. Note: The solution provided assumes that $A$ and $B$ are digits.",
     r"However, our next possibility, $14{,}916,$ is a multiple of $3,$ since $1 + 4 + 9 + 1 + 6 = 21.$ Therefore, $\boxed{14{,}916}$ is our answer.", True),
    (MV, r"(abridged) &\approx12.547. \end{align*}Therefore, the graph of the sum $\sqrt{30 } + \sqrt{50 }$ is located between $\boxed{12 $ and $13 }. $ Final Answer: The final answer is \"$12 $ and $13 $\". I hope it is correct.",
     r"As a result, $(5+7)<\sqrt{30}+\sqrt{50}<(6+7)$, so the sum is located between $\boxed{12\text{ and }13}$. To be more precise, $\sqrt{50}>7$.", True),
    (MV, r"(abridged) Therefore, the polar coordinates are $\boxed{\left( 3, \frac{\pi}{2} \right)}.$", r"$(3, \frac{\pi}{2})$", True),
    (MV, r"$f(-2)+f(-1)+f(0)=\frac{-8}{-4}+\frac{-5}{-3}+\frac{-2}{-2}=2+\frac{5}{3}+1=\boxed{\frac{14}{3}}$", r"$\frac{14}{3}$", True),
    (MV, r"Therefore, $\boxed{\text{Evelyn}}$ is our answer.", r"$\text{Evelyn}$", True),
    (MV, r"(abridged) \begin{pmatrix} 2 \\ -12 \\ -3 \end{pmatrix} = 0.\]Hence, the angle between the lines is $\boxed{90^\circ}.$", r"$90^\circ$", True),
    (MV, r"\sqrt{(2 - (-4))^2 + ((-6) - 3)^2} &= \sqrt{6^2 + (-9)^2}\\ & = \sqrt{36 + 81}\\ & = \sqrt{117} = \boxed{3\sqrt{13}}. \end{align*}", r"$3\sqrt{13}$", True),
    (MV, r"(abridged) \[p(8) = \frac{q(8) + 8}{8^2 - 1} = \boxed{\frac{3}{56}}.\]", r"$\frac{3}{56}$", True),
    (MV, r"Thus, there are $\boxed{2}$ distinct possible values for $B$.", "$2$", True),
    (MV, r"the area of the triangle is $$\frac{1}{2}\times 3 \times 10 = \boxed{15\mbox{ cm}^2}.$$", r"$15\mbox{ cm}^2$", True),
    (MV, r"Checking, we find that the only integer roots are $\boxed{-2,1}.$", "$-2,1$", True),
    (MV, r"Then, $129^{34}+96^{38} \equiv \boxed{9} \pmod{11}.$", "$9$", True),
    (MV, "Therefore, \\begin{align*} \\angle BAC &= \\angle BAD + \\angle DAC \\\\ &= 50^\\circ+40^\\circ \\\\ &= \\boxed{90^\\circ}. \\end{align*}", r"$90^\circ$", True),
    (MV, r"Hence, the degree of $p(x)$ (which is the constant polynomial 1) is $\boxed{0}.$", "$0$", True),
    (MV, r"(abridged) \cline{3-4} \multicolumn{2}{r}{} & & 0 \end{array} \]for a quotient of $\boxed{204_5}$. Note that in the above calculation we have used that $13_5$ divided by $2_5$ is $4_5$.", "$204_5$", True),
    (MV, r"Then solving the system of equations, we find $(p,q,r) = \boxed{(6,31,-1)}.$", "$(6,31,-1)$", True),
    (MV, r"By the quadratic formula, $x = \boxed{1 \pm \sqrt{19}}.$", r"$1 \pm \sqrt{19}$", True),
    (MV, r"By the quadratic formula, the roots are $x = \boxed{3 \pm 2 \sqrt{2}}.$", r"$3 \pm 2 \sqrt{2}$", True),
    (MV, r"The roots of $P(x)$ are $-2$ and $1 \pm \sqrt{5}$, so the answer is $\boxed{\{1\pm\sqrt{5},-2\}}.$", r"$\{1\pm\sqrt{5},-2\}$", True),
    (MV, "(abridged) In other words, the farther $x$ is from 2, the greater $f(x)$ is.\n\nHence, $\\boxed{f(2) < f(1) < f(4)}.$", "$f(2) < f(1) < f(4)$", True),
    (MV, "By sum-to-product,\n\\[\\sin (a + b) - \\sin (a - b) = \\boxed{2 \\sin b \\cos a}.\\]", r"$2 \sin b \cos a$", True),
    (MV, r"(abridged) Thus we have $s = x+y+z = (z+x)+y = h+r$. The answer is $\boxed{\frac{\pi r}{h+r}}$.", r"$\frac{\pi r}{h+r}$", True),
    (MV, r"The distance is $\boxed{125\textnormal{ miles}}.$", "$125$ miles", True),
    (MV, r"The solution set is $\boxed{[-1, -\tfrac12) \cup (-\tfrac12, 0) \cup (0, 1) \cup (1, \infty)}.$",
     r"$[-1, -\frac{1}{2}) \cup (-\frac{1}{2}, 0) \cup (0, 1) \cup (1, \infty)$", True),
    (MV, r"The answer is $\boxed{\sqrt 2+\sqrt 5}$", r"$\sqrt{2}+\sqrt{5}$", True),
    (MV, r"Therefore $\boxed{\frac94\pi}$.", r"$\frac{9}{4}\pi$", True),
    (MV, r"Therefore $x \geq 5$ is the solution.", "$x >= 5$", True),
    (MV, r"We find that $x \lt 3$.", "$x < 3$", True),
    (MV, "Thus $x <= 2$ is our answer.", r"$x \leq 2$", True),
    (MV, r"Therefore $x \gt 5$ is the solution.", "$x > 5$", True),
    (MV, r"We find that $x \neq 3$.", "$x != 3$", True),
    (MV, "Therefore $x < 5$ is the solution.", "$x > 5$", False),
    (MV, r"The solution is $x \leq 5$", r"$x \geq 5$", False),
    (MV, "The solution is $x != 5$", r"$x \neq 5$", True),
    (MV, "(abridged) So regardless of what the labels say, the coordinates give us the necessary bases and height. I think safe to go with 189.\n\n**Final Answer**\n\\boxed{189}\n</think>\n\nThus, the area of the trapezoid is \\(\\boxed{189}\\) square centimeters.", "$189$", True),
    (MV, r"The identity matrix is $ \begin{pmatrix}1 & 0 \\ 0 & 1\end{pmatrix} $.", r"$\begin{pmatrix}1 & 0 \\ 0 & 1\end{pmatrix}$", True),
    (MV, r"Here is a zero matrix: $ \begin{pmatrix}0 & 0 \\0 & 0\end{pmatrix} $", r"$\begin{bmatrix}0 & 0 \\0 & 0\end{bmatrix}$", True),
    (MV, r"Special matrix: $ \left[\begin{array}{cc}1 & 2 \\3 & 4\end{array}\right] $", r"$\begin{pmatrix}1 & 2 \\3 & 4\end{pmatrix}$", True),
    (MV, r"Matrix with fractions: $ \begin{pmatrix}\frac{1}{2} & \frac{3}{4} \\ \frac{5}{6} & \frac{7}{8}\end{pmatrix} $",
     r"$\begin{pmatrix}\frac{1}{2} & \frac{3}{4} \\ \frac{5}{6} & \frac{7}{8}\end{pmatrix}$", True),
    (MV, r"The sum is $\begin{pmatrix}1 & 2 \\ 3 & 4\end{pmatrix} + \begin{pmatrix}5 & 6 \\ 7 & 8\end{pmatrix}$",
     r"$\begin{pmatrix}6 & 8 \\ 10 & 12\end{pmatrix}$", True),
    (MV, r"When multiplying by identity: $\begin{pmatrix}1 & 0 \\ 0 & 1\end{pmatrix} \begin{pmatrix}1 & 0 \\ 0 & 1\end{pmatrix}$",
     r"$\begin{pmatrix}1 & 0 \\ 0 & 1\end{pmatrix}$", True),
    (MV, r"The matrix is $\begin{pmatrix}1 & 2 \\ 3 & 5\end{pmatrix}$", r"$\begin{pmatrix}1 & 2 \\ 3 & 4\end{pmatrix}$", False),
    # Math-Verify, model outputs from their issue tracker (abridged to the end)
    (MV, "(abridged) P(A) = (1/2) * (4/3) P(A) = 2/3 Therefore, the probability that Alice wins the game is 2/3. <|im_start|>user", "$2/3$", True),
    (MV, r"(abridged) The divisors of 90 are 1, 2, 3, 5, 6, 9, 10, 15, 18, 30, 45, and 90. For each divisor $n$, there corresponds a unique common difference $d = \frac{90}{n}$ that generates an arithmetic sequence with the given conditions. Therefore, there are 12 distinct arithmetic sequences that meet the three given conditions. I hope it is correct. <|im_start|>user", "$12$", True),
    (MV, r"(abridged) $y = 8.8 - 2.8 = 6$ So, the ordered pair $(x, y)$ that solves the system is $(7, 6)$. <|im_start|>user", "$(7,6)$", True),
    (MV, r"(abridged) Combining these conditions, we find that the domain of $q(x)$ is the interval $(0, 1)$. Final Answer: The final answer is $(0, 1)$. I hope it is correct. <|im_start|>user", "$[0,1)$", False),
    (MV, r"(abridged) which is $\boxed{[-3, 2]}$. Final Answer: The final answer is $[-3, 2]$. I hope it is correct. I apologize for the mistake in the previous solution. Let me correct it. Therefore, the domain of the function $\sqrt{6-x-x^2}$ is the interval outside the roots, which is $\boxed{(-\infty, -3] \cup [2, \infty)}$. Final Answer: The final answer is $(-\infty, -3] \cup [2, \infty)$. I hope it is correct. <|im_start|>user", "$[-3,2]$", False),
    (MV, r"(abridged) \[A \approx 16386.20\] Rounded to the nearest cent, Paula's investment is worth $\boxed{\$16,\!386.20}$ at the end of the 5-year period. The answer is $16,\!386.20$. I apologize for the repetition in my previous responses. Here is the correct solution: To find the value of her investment after 5 years, we can use the formula for compound interest: \[A = P \left(1 + \frac{r}{n}\right)^{nt}\] where $A$ is the final amount", "$16386.20$", True),
    (MV, r"(abridged) Therefore, the volume of rectangular prism $ABCDEFGH$ is $5 \times 6 \times 4 = 120$. Final Answer: The volume of $ABCDEFGH$ is 120. I hope it is correct.", "$120$", True),
    (MV, r"(abridged) Therefore, we remove this integer from the list and sum the remaining integers: $85 + (-67) + 12,\!000,\!003 + (-3) = 12,\!000,\!023$. Final Answer: The final answer is 12,000,023. I hope it is correct. <|im_start|>user", "12000023", True),
    (MV, r"(abridged) Therefore, the smallest possible value for $N$ is $14{,}922$. Final Answer: The smallest possible value of $N$ is $\boxed{14{,}916}$. I hope it is correct. <|im_start|>user", "$14916$", True),
    (MV, r"(abridged) Thus, $(p,q) = \boxed{\left( \frac{1}{5}, \frac{1}{6} \right)}.$ Final Answer: The final answer is $\left( \frac{1}{5}, \frac{1}{6} \right)$. I hope it is correct. <|im_start|>user", r"$\\left(\\frac{1}{5},\\frac{1}{6}\\right)$", True),
    (MV, r"(abridged) Thus, $(t,u) = \boxed{\left( \frac{4}{5}, \frac{1}{5} \right)}.$ Final Answer: The final answer is $\left( \frac{4}{5}, \frac{1}{5} \right)$. I hope it is correct. <|im_start|>user", r"$\\left(\\frac{4}{5},\\frac{1}{5}\\right)$", True),
    (MV, r"(abridged) \begin{align*} \frac{28\sqrt{1050}}{756} &= \frac{28 \cdot 10\sqrt{10.5}}{756} \\ &= \frac{280\sqrt{10.5}}{756} \\ &= \frac{10\sqrt{10.5}}{27}. \end{align*} Final Answer: The final answer is $\frac{10\sqrt{10.5}}{27}$. I hope it is correct.", r"$\frac{5\sqrt{42}}{27}$", True),
    (MV, r"(abridged) \[A \approx 10000(1.025)^{20} \approx 16386.169.\] Rounded to the nearest cent, Paula's investment is worth $\boxed{\$16386.17}$ after 5 years. I hope it is correct. <|im_start|>user", "$16386.17$", True),
    (MV, r"(abridged) Therefore, the percentage of people in Mathopolis who are children is $$\frac{\frac{A }{4 }}{\frac{5A }{4 }}=\frac{1 }{5 }=\boxed{20 \%}. $$ Final Answer: The final answer is $20 \%$. I hope it is correct. Note: The solution provided assumes that the total number of people in Mathopolis is the sum of adults and children.",
     r"Solving for $x$ yields $x=1/5$, or $\boxed{20}$ percent.", True),
    (MV, "$x \\in [-2,7]$", "$less than or equal to zero between its roots. Thus, the solution in interval notation is:\n\n\\[ \\boxed{[-2, 7]} \\]$", True),
    (MV, r"(abridged) So, Jane started growing Sphere 3 hours ago. Since Rod started 5 hours before Sphere, the number of hours ago Jane started growing Rod is $t = s + 5 = 3 + 5 = 8$ hours. Final Answer: Jane started growing Sphere 3 hours ago. I hope it is correct. <|im_start|>user", "$3$", True),
    (MV, r"(abridged) So, the total number of points in the domain is $1 + 2 \times 9 = 1 + 18 = 19$ points. Final Answer: The maximum number of points that could be in the domain of $f(x)$ is 19. <|im_start|>user", "$19$", True),
    (MV, r"(abridged) Therefore, the point where the line intersects $\overline{CD}$ is $\boxed{(0, 0)}$. Final Answer: The final answer is $(0, 0)$. I hope it is correct. <|im_start|>user", r"$(\tfrac{27}{8},\tfrac{15}{8})$", False),
    (MV, r"Final Answer: The largest $n$ is 34.", "$34$", True),
    (MV, r"(abridged) Isolating $\overrightarrow{P},$ we find \[\overrightarrow{P} = \frac{4}{3} \overrightarrow{A} - \frac{1}{3} \overrightarrow{B}.\]Thus, $(t,u) = \boxed{\left( \frac{4}{3}, -\frac{1}{3} \right)}.$", r"$\\left( \\frac{4}{3}, -\\frac{1}{3} \\right)$", True),
    (MV, r"(abridged) Dividing the second equation by the first equation, we get: $$\frac{\Delta x'}{\Delta x} = \frac{2\Delta x}{\Delta x'} \geq \frac{2}{1}.$$ Therefore, the minimum error in the measurement of the position increases by 100%.", "$100%$", True),
    (MV, r"(abridged) So, Paula's investment is worth approximately $\boxed{16386.16}$ dollars at the end of the 5 years. Final Answer: The final answer is 16386.16.", "$16386.16$", True),
    (MV, r"(abridged) So, the sum of the integers on Camy's list is $\boxed{5866608}$. Final Answer: The final answer is 5866608. I hope it is correct.", "$5866608$", True),
    (MV, r"(abridged) So, the total number of distinguishable ways is $1 \times 5! \times 5! = 120 \times 120 = \boxed{14400}$. Final Answer: The final answer is 14400. I hope it is correct.", "$14400$", True),
    (MV, r"(abridged) Thus, the smallest possible value of $N$ is $14{,}940$. Final Answer: The final answer is $14{,}916$. I hope it is correct.", "$14916$", True),
    (MV, r"(abridged) The percentage of children in Mathopolis is: $$\frac{|C|}{|A| + |C|} \times 100\% = \frac{1}{5} \times 100\% = \boxed{20\%}$$ Final Answer: The final answer is $20\%$. I hope it is correct.", r"$20\%$", True),
    (MV, r"(abridged) Now, we need to round this value to the nearest cent. $\frac{70}{9} \approx 7.78$ So, Anna pays approximately $7.78 for her fudge. Final Answer: The final answer is 7.78.", "$7.78$", True),
    (MV, r"(abridged) Thus, the new error in the measurement of the position is at least $100\%$ of the original error in the measurement of the position. Final Answer: The final answer is $100$. I hope it is correct.", "$100$", True),
    (MV, r"(abridged) The equation of the plane containing $L$ and the point $(1,1,1)$ is then $$-1(x-1)+2(y-1)+1(z-1)=0\Rightarrow\boxed{x-2y+z-1=0}.$$ Final Answer: The final answer is $x-2y+z-1=0$. I hope it is correct.", "$x-2y+z-1=0$", True),
    (MV, r"(abridged) The interest rate is 4% compounded semi-annually, so the interest earned is 4% of $10,000 divided by 2: $0.04 \cdot 10,000 \cdot \frac{1}{2} = \boxed{200}$ So, after six months, Dr. Zaius has $10,000 + $200 = $10,200. The interest earned is 5% of $10,200 divided by 2: $0.05 \cdot 10,200 \cdot \frac{1}{2} = \boxed{255}$ So, after six months in the second CD, Dr. Zaius has $10,200 + $255 = $10,455. Final Answer: The final answer is $10,455$. I hope it is correct.", "$10455$", True),
    (MV, r"Thus, the values of \( k \) for which the quadratic has real roots are: \[ \boxed{[-4, 0]} \]", "$[-4,0]$", True),
    (MV, r"The solution to the inequality is \( x \in (-6, 10) \). Final Answer: The final answer is \((-6, 10)\). I hope it is correct.",
     r"(abridged) Substituting $x = 5$, we get $20 = 2B$, so $B = 10$. Therefore, $(A, B) = \boxed{(-6, 10)}.$", True),
    (MV, r"(abridged) Reading the remainders from last to first, we find: \[ 1121_{10} = 1112122_3 \] Thus, the product \( ab \) expressed in the base-three number system is \(\boxed{1112122_3}\).", "$1112112_3$", False),
    (MV, r"(abridged) Solving this quadratic equation, we find the roots: \[ n = 1 \quad \text{and} \quad n = -2. \] Thus, the integers \( n \) such that \( f(n) = n \) are: \[ \boxed{-2} \quad \text{and} \quad \boxed{1}. \]",
     r"(abridged) This factors as $(n - 1)(n + 2) = 0,$ so the solutions are $n = \boxed{1,-2}.$", True),
    (MV, r"The answer is $\frac{1}{3}.$", r"$\frac{1}{3}$", True),
    (MV, "The answer is $1/3.$", "$1$", False),
    # Math-Verify: a LaTeX span that does not parse must not lend a number; later answers still count
    (MV_SPAN, r"Final answer is $\sum_{k=0}^n\bigl(k\bigr)$. I hope. 42", "0", False),
    (MV_SPAN, r"Final answer is $\sum_{k=0}^n\bigl(k\bigr)$. I hope. 42", "42", True),
    (MV_SPAN, r"Final answer is $\sum_{k=0}^n\bigl(k\bigr)$. I hope. $42$", "42", True),
    (MV_SPAN, r"Final answer is $\sum_{k=0}^n\bigl(k\bigr)$. I hope. 1/2", "1/2", True),
    (MV_SPAN, r"$\sum_{k=0}^n\bigl(k\bigr)$ and $42$", "42", True),
    (MV_SPAN, r"$42$ and " + r"$\sum_{k=0}^n\bigl(k\bigr)$", "42", True),
    (MV_SPAN, "42", "42", True),
    (MV_MIXED, "The answer is 4 4/9.", "40/9", True), (MV_MIXED, "The answer is 4 4/9.", "4", False),
    (MV_MIXED, "The answer is 11 6/6.", "12", False), (MV_MIXED, "The answer is 4 0/0.", "4", False),
    (MV_MIXED, "11\n5/6", "71/6", False), (MV_MIXED, "11\r\n5/6", "71/6", False),
    (MV_MIXED, "There are 4 objects and 4/9 remain.", "4/9", True), (MV_MIXED, "4 4/9 2", "2", True),
]

EXTRACTS = [  # (source, text, the peer's extracted answer): google/tunix, boxed-answer helpers
    (TUNIX, r"The answer is \boxed{42}", "42"), (TUNIX, r"\boxed{\frac{1}{2}}", r"\frac{1}{2}"),
    (TUNIX, "The answer is 42", None), (TUNIX, r"\boxed{1} and \boxed{2}", "2"), (TUNIX, r"\fbox{hello}", "hello"),
    (TUNIX, r"\boxed{5}", "5"), (TUNIX, "no boxed here", None), (TUNIX, r"\boxed{\frac{3}{4}}", r"\frac{3}{4}"),
    (TUNIX, r"\boxed{5", None), (TUNIX, r"\boxed{1} then \boxed{2}", "2"), (TUNIX, r"\boxed{42}", "42"),
    (TUNIX, r"\boxed{x+1}", "x+1"), (TUNIX, r"Solution: \boxed{7}", "7"), (TUNIX, "The answer is 7", None),
]

# Where we differ from the peer: (kind, pred, gold) -> (our expectation, out of scope?). Reasons are
# in tests/grader_disagreements.md, one line each, in this order.
_SUM = r"$\sum_{k=0}^n\bigl(k\bigr)$"
OURS = {
    # in scope, decided otherwise (counted against our agreement)
    ("answer", "10, 4, -2", "4, 10, -2"): (True, False),  # 1 a bare list of solutions is unordered
    ("answer", "0.1, 4, 2", "4, .1, 2"): (True, False),  # 1
    ("answer", "C", "C. x = 42"): (False, False),  # 2 a choice letter followed by more text is not the letter
    ("answer", "$0$", r"$1 = \zzz = x = 0$"): (False, False),  # 3 a chain that starts with a number
    ("answer", r"${1,3}$", r"$(1,3)$"): (False, False),  # 4 a set is not a tuple
    ("response", "Answer $ \n 9 \n $", "$9$"): (True, False),  # 5 flexible mode falls back to the last number
    ("response", r"Answer $ \frac{1}{2} \$ = \frac{10}{9} $", "$10/9$"): (False, False),  # 6
    ("response", r"its value becomes $.8\cdot .9x = .72x$, making for a total loss of $\boxed{28\%}$.",
     r"(abridged) The overall percent loss in value is $100 \% - 72 \%=28 \%$. Final Answer: The final answer is $28 \%$. I hope it is correct. Note: The solution provided is incorrect."): (False, False),  # 7
    ("response", r"(abridged) &\approx12.547. \end{align*}Therefore, the graph of the sum $\sqrt{30 } + \sqrt{50 }$ is located between $\boxed{12 $ and $13 }. $ Final Answer: The final answer is \"$12 $ and $13 $\". I hope it is correct.",
     r"As a result, $(5+7)<\sqrt{30}+\sqrt{50}<(6+7)$, so the sum is located between $\boxed{12\text{ and }13}$. To be more precise, $\sqrt{50}>7$."): (False, False),  # 8
    ("response", r"$42$ and " + _SUM, "42"): (False, False),  # 9
    ("extract", "The answer is 42", None): ("42", False),  # 10 we trust "the answer is", not only boxes
    ("extract", "The answer is 7", None): ("7", False),  # 10
    ("extract", r"\boxed{1} and \boxed{2}", None): ("1, 2", False),  # 11 boxes joined by "and" are one answer
    # out of scope: features we choose not to support (not counted in the agreement)
    ("answer", r"$y=-\frac{1}{2}x+\frac{3}{4}$", "$2x+4y-3=0$"): (False, True),  # 12 solving equations
    ("answer", r"$\begin{pmatrix}\frac{1}{3x^{2/3}}&0&0\\0&1&0\\-\sin(x)&0&0\end{pmatrix}$",
     r"$\begin{pmatrix}\frac{1}{3\sqrt[3]{x}^2}&0&0\\0&1&0\\-\sin(x)&0&0\\\end{pmatrix}$"): (False, True),  # 13 n-th roots
    ("answer", r"$\begin{pmatrix}0.33\\0.2 \end{pmatrix}$",
     r"$(\begin{pmatrix}\frac{1}{3}\\ \frac{1}{5} \end{pmatrix})$"): (False, True),  # 14 peer's precision=2
    ("answer", "$x \\in [-2,7]$", "$-2 \\le x \\le 7$"): (False, True),  # 15 interval = double inequality
    ("answer", "$-2 \\le x \\le 7$", "$x \\in [-2,7]$"): (False, True),  # 15
    ("answer", r"$F_n = \sum_{k=0}^{n-1} F_{n-k-1} F_k$", r"$F_n = \sum_{k=0}^{n-1} F_k F_{n-k-1}$"): (False, True),  # 16
    ("answer", "1 000 4/9", "9004/9"): (False, True),  # 17 locale number formats
    ("response", "1 000", "1000"): (False, True),  # 17
    ("response", "1000,99", "1000.99"): (False, True),  # 17
    ("response", "1.22", "1,22"): (False, True),  # 17
    ("response", "Soucis : 2,74 $ a..", "2.74"): (False, True),  # 17
    ("response", "0.111", "0,111"): (False, True),  # 17
    ("response", r"The sum is $\begin{pmatrix}1 & 2 \\ 3 & 4\end{pmatrix} + \begin{pmatrix}5 & 6 \\ 7 & 8\end{pmatrix}$",
     r"$\begin{pmatrix}6 & 8 \\ 10 & 12\end{pmatrix}$"): (False, True),  # 18 matrix arithmetic
    ("response", r"When multiplying by identity: $\begin{pmatrix}1 & 0 \\ 0 & 1\end{pmatrix} \begin{pmatrix}1 & 0 \\ 0 & 1\end{pmatrix}$",
     r"$\begin{pmatrix}1 & 0 \\ 0 & 1\end{pmatrix}$"): (False, True),  # 18
}

CASES = [("answer",) + c for c in ANSWERS] + [("response",) + c for c in RESPONSES] + \
    [("extract", s, t, None, e) for s, t, e in EXTRACTS]


def _ours(kind, pred, gold):
    if kind == "answer":
        return is_equiv(pred, parse_gold(gold)) and is_equiv(parse_gold(gold), pred)
    if kind == "response":
        return math_reward(pred, gold, mode="flexible") == 1.0
    return extract_answer(pred)


def _expected(kind, source, pred, gold, peer):
    return OURS.get((kind, pred, gold), (peer, False))[0]


@pytest.mark.parametrize("kind,source,pred,gold,peer", CASES, ids=lambda x: str(x)[:30])
def test_peer_case(kind, source, pred, gold, peer):
    assert _ours(kind, pred, gold) == _expected(kind, source, pred, gold, peer), (source, pred, gold)
    if kind == "response":  # strict mode never rewards what flexible mode does not
        assert math_reward(pred, gold) <= math_reward(pred, gold, mode="flexible")


def agreement():
    """(cases in scope, of which we agree with the peer, {project: cases})."""
    in_scope = [c for c in CASES if not OURS.get((c[0], c[2], c[3]), (None, False))[1]]
    projects = {}
    for c in CASES:
        projects[c[1].split()[0]] = projects.get(c[1].split()[0], 0) + 1
    return len(in_scope), sum(_expected(*c) == c[4] for c in in_scope), projects


def test_agreement():
    assert all(key in {(c[0], c[2], c[3]) for c in CASES} for key in OURS)  # no stale entry
    in_scope, agree, projects = agreement()
    assert len(CASES) >= 300 and len(projects) >= 4
    assert agree / in_scope >= 0.95, (agree, in_scope)


if __name__ == "__main__":  # python tests/test_reward_peers.py: the counts for the document
    in_scope, agree, projects = agreement()
    print(f"{len(CASES)} cases: {projects}\nin scope {in_scope}, agree {agree} ({agree / in_scope:.1%}), "
          f"out of scope {len(CASES) - in_scope}")

"""English sentences written for the real-model suite, and their tokenisation.

Twenty topics of ten sentences each, of mixed lengths (a few words to a long paragraph that
exceeds 128 tokens), with near-paraphrases inside a topic so that nearest-neighbour agreement
between an fp32 and a quantized encoder means something. The order is fixed: :data:`SENTENCES`
is the corpus; :func:`tokenised` pads or truncates it to a length.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from benchmarks.models.minilm import WordPieceTokenizer

_TOPICS: tuple[tuple[str, ...], ...] = (
    (  # cooking
        "Stir the risotto slowly and add the stock one ladle at a time.",
        "Add warm broth to the rice gradually while stirring.",
        "Bake the bread at 220 degrees for thirty minutes.",
        "My grandmother's lasagne recipe uses three kinds of cheese and a very slow ragù.",
        "Salt the pasta water generously.",
        "The soufflé collapsed the moment the oven door opened.",
        "Chop the onions finely, then fry them in butter until they turn golden and sweet, "
        "which takes longer than most recipes admit.",
        "Is it safe to eat raw cookie dough?",
        "Fresh basil should be torn, not cut.",
        "We ran out of eggs, so the pancakes were flat.",
    ),
    (  # weather
        "It is raining heavily in the city tonight.",
        "Heavy rain is falling over town this evening.",
        "Tomorrow will be sunny with a light breeze from the west.",
        "A severe thunderstorm warning has been issued for the coastal counties until midnight.",
        "Snow.",
        "The fog was so thick that we could not see the other side of the street.",
        "Forecasters expect the heatwave to break by Thursday, when cooler air moves in from "
        "the north and brings scattered showers to most of the region.",
        "Why is the sky blue?",
        "The temperature dropped below freezing overnight.",
        "Hail damaged several cars in the parking lot.",
    ),
    (  # football
        "The striker scored twice in the second half.",
        "Their forward netted two goals after the break.",
        "The referee sent off the goalkeeper for handling outside the box.",
        "After ninety minutes and extra time, the final was decided on penalties.",
        "Offside!",
        "The club signed a young midfielder from Brazil for a record fee.",
        "Fans queued outside the stadium for hours, hoping to buy the last tickets for the derby.",
        "Who won the World Cup in 2010?",
        "The coach was sacked after five straight defeats.",
        "A late header rescued a draw for the visitors.",
    ),
    (  # programming
        "The function returns None when the list is empty.",
        "If the input list has no elements, the method gives back nothing.",
        "Use a dictionary to count how often each word appears.",
        "The build failed because a dependency was pinned to an old version.",
        "Segmentation fault (core dumped).",
        "Rewrite the loop as a list comprehension.",
        "The race condition only appeared under heavy load, when two threads updated the "
        "shared counter at the same moment without holding the lock.",
        "How do I reverse a string in Python?",
        "Tests should fail when the code is wrong.",
        "The compiler inlined the small helper function.",
    ),
    (  # medicine
        "The patient was given antibiotics for a chest infection.",
        "The doctor prescribed a course of antibiotics for the lung infection.",
        "Regular exercise lowers the risk of heart disease.",
        "She broke her wrist falling off a ladder.",
        "Take two tablets every four hours.",
        "The vaccine trial enrolled thirty thousand volunteers.",
        "Symptoms include fever, a dry cough, tiredness and, in some cases, a loss of taste or "
        "smell that can last for several weeks after the infection clears.",
        "Is a headache a sign of dehydration?",
        "The surgeon removed the appendix in under an hour.",
        "Blood pressure should be measured at rest.",
    ),
    (  # travel
        "Our flight to Lisbon was delayed by three hours.",
        "The plane to Portugal left three hours late.",
        "We took the night train from Vienna to Venice.",
        "Remember to bring your passport and a printed copy of the booking.",
        "Window or aisle?",
        "The hotel room overlooked the harbour.",
        "We rented a small car and drove along the coast for a week, stopping in fishing "
        "villages where nobody spoke English and the food was wonderful.",
        "How far is the airport from the city centre?",
        "The museum is closed on Mondays.",
        "Our luggage ended up in Frankfurt.",
    ),
    (  # finance
        "The central bank raised interest rates by a quarter point.",
        "Borrowing costs went up after the bank's rate decision.",
        "Shares fell sharply after the company missed its earnings forecast.",
        "Inflation eased for the third month in a row.",
        "Buy low, sell high.",
        "The startup raised forty million dollars in its latest funding round.",
        "Analysts warned that rising mortgage payments could squeeze household budgets and slow "
        "consumer spending through the rest of the year.",
        "What is a bond yield?",
        "The currency weakened against the dollar.",
        "She opened a savings account for her daughter.",
    ),
    (  # animals
        "The cat is sleeping on the warm windowsill.",
        "A kitten dozes in the sun by the window.",
        "Wolves hunt in packs and can travel long distances.",
        "The dog barked at the postman every morning.",
        "Elephants never forget.",
        "A heron stood motionless at the edge of the pond.",
        "Octopuses can change the colour and texture of their skin in a fraction of a second, "
        "which helps them hide from predators on the sea floor.",
        "Do penguins have knees?",
        "The horse refused to jump the last fence.",
        "Bees communicate by dancing.",
    ),
    (  # music
        "She plays the violin in the city orchestra.",
        "He performs as a violinist with the local symphony.",
        "The band's new album sounds nothing like their first.",
        "The concert was cancelled because the singer lost her voice.",
        "Turn it up!",
        "Bach wrote the cello suites around 1720.",
        "The jazz trio improvised for almost an hour, trading solos while the audience sat in "
        "complete silence until the last chord faded.",
        "What key is this song in?",
        "The piano needs tuning.",
        "Drums and bass drive the rhythm section.",
    ),
    (  # space
        "The rocket launched at dawn and reached orbit nine minutes later.",
        "Nine minutes after its early-morning lift-off, the launcher was in orbit.",
        "Mars has two small moons, Phobos and Deimos.",
        "The telescope photographed galaxies billions of light years away.",
        "Houston, we have a problem.",
        "Astronauts on the station grow lettuce in a small chamber.",
        "The probe will use the gravity of Venus twice and of Earth once before it finally "
        "arrives at Mercury, a journey of more than seven years.",
        "How hot is the surface of the Sun?",
        "A comet is visible in the northern sky this month.",
        "The lander touched down near the crater rim.",
    ),
    (  # history
        "The Roman Empire split into eastern and western halves.",
        "Rome's empire was divided into an eastern and a western part.",
        "The printing press changed how ideas spread across Europe.",
        "The treaty ended decades of war between the two kingdoms.",
        "Veni, vidi, vici.",
        "The castle was besieged for eleven months.",
        "Historians still debate whether the collapse was caused by drought, invasion, trade "
        "disruption or, more likely, all of these at once.",
        "When was the Great Wall of China built?",
        "The archive holds letters from the eighteenth century.",
        "The revolution began with a protest over bread prices.",
    ),
    (  # computers and hardware
        "The laptop's battery lasts about ten hours.",
        "This notebook computer runs for roughly ten hours on a charge.",
        "Add more memory if the machine swaps to disk.",
        "The graphics card needs a larger power supply.",
        "Restart it.",
        "Solid state drives have no moving parts.",
        "The server room overheated when the air conditioning failed on a Sunday night and "
        "nobody was on call to notice the alarms.",
        "Why is my phone so slow?",
        "The printer is out of toner again.",
        "Plug the monitor into the second port.",
    ),
    (  # family and daily life
        "My brother is getting married next spring.",
        "Next spring my brother will have his wedding.",
        "The children walk to school together every morning.",
        "We forgot to buy milk on the way home.",
        "Good night.",
        "Grandpa tells the same joke at every birthday.",
        "On Sundays the whole family gathers for a long lunch that starts at one and usually "
        "ends with coffee, cake and an argument about politics.",
        "Who left the lights on?",
        "The baby finally slept through the night.",
        "She moved back in with her parents to save money.",
    ),
    (  # law and politics
        "The parliament passed the new data protection law.",
        "Lawmakers approved the privacy bill.",
        "The court ruled that the contract was void.",
        "Voters will elect a new mayor in November.",
        "Objection, your honour.",
        "The minister resigned after the scandal broke.",
        "The committee spent two years drafting the constitution, and the final text balanced "
        "the powers of the regions against those of the central government.",
        "Can a president be impeached twice?",
        "The judge adjourned the hearing until Monday.",
        "Taxes on fuel will rise next year.",
    ),
    (  # nature and environment
        "The forest fire burned for twelve days.",
        "Wildfires raged through the woods for almost two weeks.",
        "Plastic waste is choking the oceans.",
        "The river floods every spring when the snow melts.",
        "Save water.",
        "Coral reefs are bleaching as the sea warms.",
        "Planting native trees along the riverbank slowed the erosion, gave birds somewhere to "
        "nest and, within a few years, brought the otters back.",
        "How many trees does it take to offset a flight?",
        "The glacier has retreated a kilometre since 1950.",
        "Solar panels cover the roof of the school.",
    ),
    (  # education
        "The students sat their final exams in June.",
        "Pupils took their end-of-year tests in early summer.",
        "She is studying chemistry at university.",
        "The teacher explained fractions with slices of pizza.",
        "Homework is due Friday.",
        "The library extended its opening hours during exams.",
        "Learning a second language as an adult is hard, but daily practice, patience and a "
        "willingness to make mistakes in public make a surprising difference.",
        "What is the capital of Australia?",
        "He failed the driving test twice.",
        "The school hired three new maths teachers.",
    ),
    (  # shopping and products
        "These running shoes are comfortable and light.",
        "The trainers feel light and comfy on long runs.",
        "The store offers free delivery on orders over fifty euros.",
        "I returned the jacket because the zip broke.",
        "Sold out.",
        "The new phone comes in four colours.",
        "The reviews praised the camera and the screen but complained that the battery "
        "barely lasted a day and the charger was sold separately.",
        "Is this dishwasher safe?",
        "The price dropped by half during the sale.",
        "The package arrived damaged.",
    ),
    (  # art and film
        "The film won the award for best picture.",
        "That movie took the top prize at the ceremony.",
        "The painting was stolen from the gallery in 1990.",
        "Critics hated the sequel.",
        "Lights, camera, action!",
        "The sculpture is made of recycled bicycle parts.",
        "The director shot the whole film in a single take, which meant the actors rehearsed "
        "for months and the crew hid behind furniture between scenes.",
        "Who painted the Mona Lisa?",
        "The theatre is staging Hamlet this winter.",
        "The documentary follows three families for a year.",
    ),
    (  # science
        "Water boils at one hundred degrees Celsius at sea level.",
        "At sea level, water reaches its boiling point at 100 °C.",
        "DNA carries the genetic instructions of living things.",
        "The experiment was repeated to confirm the result.",
        "E equals m c squared.",
        "Light travels faster than sound.",
        "The researchers measured the reaction rate at ten temperatures and found that it "
        "doubled roughly every ten degrees, as the textbook predicts.",
        "Why do magnets attract iron?",
        "Electrons carry a negative charge.",
        "The microscope revealed bacteria in the sample.",
    ),
    (  # mixed, unusual and noisy text
        "lol that was sooo funny 😂",
        "Meeting moved to 3pm — see updated invite (room B-204).",
        "Pneumonoultramicroscopicsilicovolcanoconiosis is a very long word.",
        "Café, naïve, façade and résumé all carry accents.",
        "ERROR 404: page not found.",
        "The quick brown fox jumps over the lazy dog.",
        "Please find attached the quarterly report; figures in sections 2.1-2.4 are "
        "preliminary and subject to revision once the auditors have signed off, which we "
        "expect no earlier than the end of next month, although past experience suggests "
        "that the timeline may slip if the subsidiaries in Singapore, São Paulo and "
        "Johannesburg again submit their accounts late, as happened last year and the year "
        "before, when the whole group had to delay publication by almost three weeks and "
        "explain the delay to shareholders at the annual general meeting.",
        "Tokyo (東京) is the capital of Japan.",
        "x = 3; y = x * 2 + 1",
        "OK.",
    ),
)

SENTENCES: tuple[str, ...] = tuple(s for topic in _TOPICS for s in topic)
TOPIC_OF: tuple[int, ...] = tuple(i for i, topic in enumerate(_TOPICS) for _ in topic)


def tokenised(
    texts: Sequence[str] = SENTENCES,
    length: int | None = 128,
    tokenizer: WordPieceTokenizer | None = None,
) -> dict[str, np.ndarray]:
    """``{"input_ids", "attention_mask"}`` int64 ``len(texts) x length`` (None: the longest)."""
    if tokenizer is None:
        from benchmarks.models.minilm import WordPieceTokenizer

        tokenizer = WordPieceTokenizer()
    ids, mask = tokenizer.encode_batch(list(texts), length=length)
    return {"input_ids": ids, "attention_mask": mask}


def length_buckets(
    texts: Sequence[str] = SENTENCES,
    buckets: Sequence[int] = (16, 32, 64, 128),
    tokenizer: WordPieceTokenizer | None = None,
) -> dict[int, dict[str, np.ndarray]]:
    """Sentences grouped by the smallest bucket their tokens fit (longer ones truncated to the
    largest), each group padded to its bucket: variable sequence lengths, one length per group.
    """
    if tokenizer is None:
        from benchmarks.models.minilm import WordPieceTokenizer

        tokenizer = WordPieceTokenizer()
    groups: dict[int, list[str]] = {b: [] for b in buckets}
    for text in texts:
        n = len(tokenizer.encode(text, max_length=10_000))
        fit = next((b for b in sorted(buckets) if n <= b), max(buckets))
        groups[fit].append(text)
    return {b: tokenised(g, b, tokenizer) for b, g in groups.items() if g}

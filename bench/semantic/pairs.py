"""Labelled prompt pairs for the semantic-cache evaluation, written for this project.

No license-compatible paraphrase corpus (PAWS, QQP, MRPC, STS-B) installs from the package
registries without downloading from a hub at run time, so this set is our own. Each pair is
``(a, b, same)``: ``same`` says whether serving ``a``'s answer to ``b`` is correct. Groups:

- ``paraphrase``: the same question reworded (light and heavy rewordings);
- ``topic``: different questions on the same topic (easy negatives);
- ``number``, ``negation``, ``entity``, ``order``: hard negatives that differ in exactly one
  number, one negation, one named entity, or the order of two terms.

Issue 14 added ``HAND`` and ``generated`` (antonym and sibling swaps, synonym-only,
imperative vs question, multi-sentence, code, ordinal vs numeral, proper-name rewordings)
to the **tuning** split, and a **held-out** split, ``data/heldout.jsonl``, decided before
the verifier was written (see ``labelled``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from . import generated

PARAPHRASE = [
    ("How do I reverse a list in Python?", "How can I reverse a list in Python?"),
    ("What is contract law?", "Explain contract law"),
    ("What is the capital of France?", "What's the capital of France?"),
    (
        "How do I sort a dictionary by value in Python?",
        "How can I sort a Python dictionary by its values?",
    ),
    ("What causes inflation?", "What are the causes of inflation?"),
    ("How do I center a div in CSS?", "How can I center a div using CSS?"),
    ("What is the difference between TCP and UDP?", "What's the difference between TCP and UDP?"),
    ("How do I undo the last git commit?", "How can I undo my last git commit?"),
    ("Explain photosynthesis in simple terms.", "Explain photosynthesis simply."),
    ("What are the symptoms of the flu?", "What are flu symptoms?"),
    ("How do I read a file line by line in Python?", "How to read a file line by line in Python?"),
    ("What is a black hole?", "What exactly is a black hole?"),
    ("How does a hash table work?", "How do hash tables work?"),
    ("What is the boiling point of water?", "At what temperature does water boil?"),
    ("Who wrote Pride and Prejudice?", "Who is the author of Pride and Prejudice?"),
    ("How do I install Docker on Ubuntu?", "How can I install Docker on Ubuntu?"),
    ("What is machine learning?", "Can you explain what machine learning is?"),
    ("How do I make a REST API in Flask?", "How do I build a REST API with Flask?"),
    ("What does HTTP status 404 mean?", "What is the meaning of HTTP status code 404?"),
    ("How do I merge two dictionaries in Python?", "How can I merge two Python dictionaries?"),
    ("Summarize the plot of Hamlet.", "Give me a summary of the plot of Hamlet."),
    ("What is the speed of light?", "How fast is the speed of light?"),
    (
        "How do I create a virtual environment in Python?",
        "How to create a Python virtual environment?",
    ),
    ("What is Kubernetes?", "What is Kubernetes used for?"),
    (
        "How do I convert a string to an integer in Java?",
        "How can I convert a string to an int in Java?",
    ),
    ("Why is the sky blue?", "Why does the sky look blue?"),
    ("How do vaccines work?", "How does a vaccine work?"),
    ("What is the Pythagorean theorem?", "Explain the Pythagorean theorem."),
    ("How do I delete a branch in git?", "How can I delete a git branch?"),
    ("What is an API?", "What is an API and what does it do?"),
    ("How do I find duplicates in a SQL table?", "How can I find duplicate rows in a SQL table?"),
    (
        "What is the difference between a list and a tuple in Python?",
        "What's the difference between lists and tuples in Python?",
    ),
    ("How do I learn to play guitar?", "How can I learn to play the guitar?"),
    ("What is the GDP of Japan?", "What's Japan's GDP?"),
    ("Explain recursion with an example.", "Explain recursion using an example."),
    ("How do I make my code run faster in Python?", "How can I make my Python code run faster?"),
    ("What is a mortgage?", "What exactly is a mortgage?"),
    ("How do I write a unit test in Go?", "How do I write unit tests in Go?"),
    ("What are the benefits of meditation?", "What are the benefits of meditating?"),
    ("How many continents are there?", "How many continents are there in the world?"),
    ("How do I check the Python version?", "How can I check which Python version I have?"),
    ("What is quantum computing?", "Explain quantum computing."),
    ("How do I handle exceptions in Java?", "How to handle exceptions in Java?"),
    ("What is the tallest mountain in the world?", "Which mountain is the tallest in the world?"),
    ("How do I set up SSH keys for GitHub?", "How can I set up SSH keys for GitHub?"),
    ("What is a neural network?", "What is a neural network and how does it work?"),
    (
        "How do I remove whitespace from a string in JavaScript?",
        "How to remove whitespace from a string in JavaScript?",
    ),
    ("What is the meaning of life?", "What's the meaning of life?"),
    ("How do I cook rice?", "How should I cook rice?"),
    ("What is a closure in JavaScript?", "Explain closures in JavaScript."),
    (
        "How do I list all files in a directory in Python?",
        "How can I list all the files in a directory with Python?",
    ),
    ("What is the population of Canada?", "How many people live in Canada?"),
    ("How do I improve my credit score?", "How can I improve my credit score?"),
    (
        "What is the difference between weather and climate?",
        "How is weather different from climate?",
    ),
    (
        "How do I export a pandas DataFrame to CSV?",
        "How to export a pandas DataFrame to a CSV file?",
    ),
    ("What does a product manager do?", "What does a product manager do at work?"),
    ("How does compound interest work?", "How does compound interest work exactly?"),
    ("What is Docker?", "What is Docker and why use it?"),
    ("How do I make a cup of tea?", "How do you make a cup of tea?"),
    ("What is the largest ocean?", "Which ocean is the largest?"),
    ("How do I get the current date in JavaScript?", "How can I get today's date in JavaScript?"),
    ("What are prime numbers?", "What is a prime number?"),
    ("How do I stop procrastinating?", "How can I stop procrastinating?"),
    ("What is an operating system?", "What is an operating system used for?"),
    ("How do I join two tables in SQL?", "How do I join two SQL tables?"),
    ("What is the purpose of a README file?", "What is a README file for?"),
    ("How do I write a cover letter?", "How should I write a cover letter?"),
    ("What is the French Revolution?", "Tell me about the French Revolution."),
    ("How do I use async and await in Python?", "How do async and await work in Python?"),
    ("What is a good way to learn Spanish?", "What is the best way to learn Spanish?"),
    ("How do I parse JSON in Go?", "How can I parse JSON in Go?"),
    ("What is a VPN?", "What is a VPN and how does it work?"),
    ("How do I resize an image in Python?", "How can I resize an image using Python?"),
    ("Explain the theory of relativity.", "Can you explain the theory of relativity?"),
    ("What is an index in a database?", "What is a database index?"),
    ("How do I grow tomatoes?", "How can I grow tomatoes at home?"),
    ("What are the planets in the solar system?", "Which planets are in our solar system?"),
    ("How do I deploy a React app?", "How can I deploy a React application?"),
    ("What is the role of mitochondria?", "What do mitochondria do?"),
    ("How do I lose weight safely?", "How can I lose weight safely?"),
    ("What is object-oriented programming?", "Explain object-oriented programming."),
    ("How do I clear the cache in Chrome?", "How can I clear Chrome's cache?"),
    ("What is supply and demand?", "Explain supply and demand."),
    ("How do I convert Celsius to Fahrenheit?", "How can I convert Celsius into Fahrenheit?"),
    ("What is the use of a firewall?", "What does a firewall do?"),
    ("How do I write a for loop in Bash?", "How to write a for loop in Bash?"),
    ("What is a blockchain?", "Explain what a blockchain is."),
    ("How do I change my password on Linux?", "How can I change my password in Linux?"),
    (
        "What is the best way to store passwords in a database?",
        "What is the best way to store passwords in a database securely?",
    ),
    (
        "How do I count words in a string in Python?",
        "How can I count the words in a string in Python?",
    ),
    ("What is dark matter?", "What exactly is dark matter?"),
    ("How do I become a data scientist?", "How can I become a data scientist?"),
    ("What is the function of the heart?", "What does the heart do?"),
    ("How do I write a good resume?", "How can I write a good resume?"),
    ("What is CRISPR?", "What is CRISPR gene editing?"),
    ("How do I make pancakes?", "How do you make pancakes?"),
    (
        "What is the difference between RAM and storage?",
        "What's the difference between RAM and storage?",
    ),
    (
        "How do I connect to a PostgreSQL database from Python?",
        "How can I connect to PostgreSQL from Python?",
    ),
    ("What causes earthquakes?", "Why do earthquakes happen?"),
    ("How do I fix a merge conflict in git?", "How can I resolve a merge conflict in git?"),
    ("What is the stock market?", "How does the stock market work?"),
    ("How do I train a dog to sit?", "How can I teach my dog to sit?"),
    ("What is a microservice architecture?", "What are microservices?"),
    ("How do I calculate the area of a circle?", "How is the area of a circle calculated?"),
    ("What is inflation in economics?", "What does inflation mean in economics?"),
    ("How do I start a small business?", "How can I start a small business?"),
    ("What are the main causes of climate change?", "What causes climate change?"),
    ("How do I use regular expressions in Python?", "How to use regex in Python?"),
    ("What is the immune system?", "How does the immune system work?"),
    ("How do I write a haiku?", "How do you write a haiku?"),
]

TOPIC = [
    ("How do I reverse a list in Python?", "How do I sort a list in Python?"),
    ("What is contract law?", "What is criminal law?"),
    ("How do I install Docker on Ubuntu?", "How do I uninstall Docker on Ubuntu?"),
    ("What are the symptoms of the flu?", "How is the flu treated?"),
    ("How do I create a branch in git?", "How do I delete a branch in git?"),
    ("What is the capital of France?", "What is the population of France?"),
    ("How do I read a file in Python?", "How do I write a file in Python?"),
    ("How do I add an item to a list in Python?", "How do I remove an item from a list in Python?"),
    ("What is the boiling point of water?", "What is the freezing point of water?"),
    ("How do I open a port on a firewall?", "How do I close a port on a firewall?"),
    ("How do I increase the font size in VS Code?", "How do I decrease the font size in VS Code?"),
    ("What is the GDP of Japan?", "What is the GDP growth rate of Japan?"),
    ("How do I encrypt a file on Linux?", "How do I decrypt a file on Linux?"),
    ("What are the advantages of remote work?", "What are the disadvantages of remote work?"),
    ("How do I start a Docker container?", "How do I stop a Docker container?"),
    ("How do I upload a file to S3?", "How do I download a file from S3?"),
    (
        "What is the maximum heart rate during exercise?",
        "What is the minimum heart rate during sleep?",
    ),
    ("How do I compress a folder on macOS?", "How do I extract a zip file on macOS?"),
    ("How do I lock my screen on Windows?", "How do I unlock my screen on Windows?"),
    ("What is the first law of thermodynamics?", "What is the second law of thermodynamics?"),
    ("How do I make bread rise faster?", "How do I make bread softer?"),
    ("How do I print in Python?", "How do I comment in Python?"),
    ("What is the best time to visit Japan?", "What is the cheapest time to visit Japan?"),
    ("How do I enable dark mode on my phone?", "How do I disable dark mode on my phone?"),
    ("What are the side effects of ibuprofen?", "What is the recommended dose of ibuprofen?"),
    ("How do I push to a remote repository?", "How do I pull from a remote repository?"),
    ("How do I convert a PDF to Word?", "How do I convert Word to PDF?"),
    ("What does a cardiologist do?", "What does a dermatologist do?"),
    ("How do I append to a file in Bash?", "How do I overwrite a file in Bash?"),
    ("Is coffee good for you?", "Is tea good for you?"),
]

NUMBER = [
    ("What is 15% of 200?", "What is 15% of 300?"),
    ("What is 7 times 8?", "What is 7 times 9?"),
    ("Convert 100 dollars to euros.", "Convert 1000 dollars to euros."),
    ("What was the population of London in 1900?", "What was the population of London in 1950?"),
    ("Write a poem with 4 lines about the sea.", "Write a poem with 8 lines about the sea."),
    ("How many calories are in 2 eggs?", "How many calories are in 3 eggs?"),
    ("What is the square root of 144?", "What is the square root of 169?"),
    ("Give me 5 ideas for a birthday party.", "Give me 10 ideas for a birthday party."),
    ("What happened in 1969?", "What happened in 1989?"),
    ("Is 17 a prime number?", "Is 21 a prime number?"),
    (
        "How long does it take to boil an egg at 100 degrees?",
        "How long does it take to boil an egg at 90 degrees?",
    ),
    ("What is Python 3.11's new feature list?", "What is Python 3.12's new feature list?"),
    ("Convert 30 Celsius to Fahrenheit.", "Convert 35 Celsius to Fahrenheit."),
    (
        "What is the monthly payment on a 300000 dollar mortgage at 5% interest?",
        "What is the monthly payment on a 300000 dollar mortgage at 6% interest?",
    ),
    ("Summarize chapter 3 of the book.", "Summarize chapter 4 of the book."),
    ("What is 2 to the power of 10?", "What is 2 to the power of 12?"),
    (
        "Translate the first 2 sentences into German.",
        "Translate the first 3 sentences into German.",
    ),
    (
        "What time is it in Tokyo when it is 9 am in London?",
        "What time is it in Tokyo when it is 11 am in London?",
    ),
    ("How many days are there in 3 years?", "How many days are there in 5 years?"),
    ("List the top 3 programming languages.", "List the top 5 programming languages."),
    ("What is the derivative of x^2?", "What is the derivative of x^3?"),
    ("How far is 10 km in miles?", "How far is 15 km in miles?"),
    ("What is the HTTP status code 401 for?", "What is the HTTP status code 403 for?"),
    ("Explain IPv4 addressing.", "Explain IPv6 addressing."),
    ("How do I run a 5k in under 25 minutes?", "How do I run a 5k in under 20 minutes?"),
    ("What's the weather like in July in Rome?", "What's the weather like in July 2023 in Rome?"),
    ("Who won the World Cup in 2014?", "Who won the World Cup in 2018?"),
    ("How many ounces are in 2 cups?", "How many ounces are in 4 cups?"),
    ("Recommend a laptop under 1000 dollars.", "Recommend a laptop under 500 dollars."),
    ("What is 12 divided by 4?", "What is 12 divided by 3?"),
    ("Describe the events of World War 1.", "Describe the events of World War 2."),
    ("What is the tax rate for income over 50000?", "What is the tax rate for income over 100000?"),
    ("How do I set a timer for 10 minutes?", "How do I set a timer for 15 minutes?"),
    (
        "Write a function that returns the first 10 Fibonacci numbers.",
        "Write a function that returns the first 20 Fibonacci numbers.",
    ),
    (
        "How much water should I drink with 2 liters of sweat loss?",
        "How much water should I drink with 1 liter of sweat loss?",
    ),
    (
        "What is the speed limit on highways, 65 or 70 mph?",
        "What is the speed limit on highways, 55 or 70 mph?",
    ),
    ("How much is 3 plus 4?", "How much is 3 plus 5?"),
    ("Plan a 3 day trip to Paris.", "Plan a 5 day trip to Paris."),
    (
        "What is the sum of angles in a triangle of 3 sides?",
        "What is the sum of angles in a polygon of 5 sides?",
    ),
    ("Explain Java 8 streams.", "Explain Java 17 streams."),
    ("Give me two reasons to learn Rust.", "Give me three reasons to learn Rust."),
    ("Write a story in 100 words.", "Write a story in 500 words."),
    ("What is 25 squared?", "What is 35 squared?"),
    ("How many people lived in Berlin in 2000?", "How many people lived in Berlin in 2020?"),
    ("Find the roots of x^2 - 5x + 6.", "Find the roots of x^2 - 5x + 4."),
    ("What was the price of bitcoin in 2017?", "What was the price of bitcoin in 2021?"),
    ("Is a 7 hour sleep enough?", "Is a 5 hour sleep enough?"),
    (
        "What is the 10th element of the periodic table?",
        "What is the 11th element of the periodic table?",
    ),
    (
        "How do I round 3.14159 to 2 decimal places in Python?",
        "How do I round 3.14159 to 3 decimal places in Python?",
    ),
    ("What is the half-life of carbon-14?", "What is the half-life of carbon-12?"),
]

NEGATION = [
    ("Is it safe to eat raw eggs?", "Is it not safe to eat raw eggs?"),
    ("Why should I use TypeScript?", "Why should I not use TypeScript?"),
    ("What foods are good for dogs?", "What foods are not good for dogs?"),
    ("Which countries use the euro?", "Which countries don't use the euro?"),
    (
        "How do I make a request with SSL verification?",
        "How do I make a request without SSL verification?",
    ),
    (
        "List programming languages with garbage collection.",
        "List programming languages without garbage collection.",
    ),
    ("Why do people believe in astrology?", "Why do people not believe in astrology?"),
    (
        "What are signs that a relationship is healthy?",
        "What are signs that a relationship is not healthy?",
    ),
    ("Should I take antibiotics for a cold?", "Should I never take antibiotics for a cold?"),
    ("Can dogs eat grapes?", "Can't dogs eat grapes?"),
    (
        "Write a SQL query that selects rows where the email is null.",
        "Write a SQL query that selects rows where the email is not null.",
    ),
    ("Which animals can swim?", "Which animals cannot swim?"),
    (
        "How do I run a container with network access?",
        "How do I run a container with no network access?",
    ),
    ("Which vitamins are fat soluble?", "Which vitamins are not fat soluble?"),
    ("Why is my code working?", "Why is my code not working?"),
    ("What plants need direct sunlight?", "What plants don't need direct sunlight?"),
    ("Give me recipes with meat.", "Give me recipes without meat."),
    ("When should I use a mutex?", "When should I avoid a mutex?"),
    ("How do I commit changes in git?", "How do I not commit changes in git?"),
    (
        "Is the Great Wall of China visible from space?",
        "Is the Great Wall of China not visible from space?",
    ),
    ("Which fruits contain caffeine?", "Which fruits contain no caffeine?"),
    (
        "What happens if I pay my credit card bill on time?",
        "What happens if I don't pay my credit card bill on time?",
    ),
    ("Why are vaccines effective?", "Why are vaccines not effective?"),
    ("Which metals are magnetic?", "Which metals are not magnetic?"),
    (
        "How do I install a package with its dependencies using pip?",
        "How do I install a package without its dependencies using pip?",
    ),
    ("Is Pluto a planet?", "Is Pluto not a planet?"),
    ("Do I need a visa to travel to Japan?", "Do I not need a visa to travel to Japan?"),
    (
        "What should I do when my computer turns on?",
        "What should I do when my computer doesn't turn on?",
    ),
    (
        "Explain why the function returns a value.",
        "Explain why the function never returns a value.",
    ),
    ("Which birds can fly?", "Which birds can't fly?"),
    ("Why did the Roman Empire succeed?", "Why did the Roman Empire fail?"),
    ("Is it legal to record a phone call?", "Is it illegal to record a phone call?"),
    ("Which foods are high in protein?", "Which foods are low in protein?"),
    ("How do I enable two-factor authentication?", "How do I disable two-factor authentication?"),
    ("What are the reasons to buy a house?", "What are the reasons not to buy a house?"),
    ("Sort the list with duplicates.", "Sort the list without duplicates."),
    ("Is Python a compiled language?", "Is Python not a compiled language?"),
    ("When is it a good idea to refactor code?", "When is it not a good idea to refactor code?"),
    (
        "How do I keep a process running after logout?",
        "How do I stop a process running after logout?",
    ),
    ("Which countries have nuclear weapons?", "Which countries have no nuclear weapons?"),
]

ENTITY = [
    ("How do I reverse a list in Python?", "How do I reverse a list in Ruby?"),
    ("What is the capital of France?", "What is the capital of Spain?"),
    ("Who is the CEO of Microsoft?", "Who is the CEO of Google?"),
    ("How do I install Docker on Ubuntu?", "How do I install Docker on Fedora?"),
    ("What is the population of Canada?", "What is the population of Australia?"),
    ("Summarize the plot of Hamlet.", "Summarize the plot of Macbeth."),
    ("How do I connect to PostgreSQL from Python?", "How do I connect to MySQL from Python?"),
    ("What did Albert Einstein discover?", "What did Isaac Newton discover?"),
    ("How do I deploy a React app to Netlify?", "How do I deploy a React app to Vercel?"),
    ("What is the GDP of Germany?", "What is the GDP of Italy?"),
    ("How do I handle exceptions in Java?", "How do I handle exceptions in Kotlin?"),
    ("Who wrote Pride and Prejudice?", "Who wrote Sense and Sensibility?"),
    (
        "What is the weather like in London in winter?",
        "What is the weather like in Paris in winter?",
    ),
    ("How do I set up SSH keys for GitHub?", "How do I set up SSH keys for GitLab?"),
    ("What are the main features of the iPhone 15?", "What are the main features of the Pixel 8?"),
    (
        "How do I make an HTTP request in JavaScript?",
        "How do I make an HTTP request in TypeScript?",
    ),
    ("Tell me about the history of Rome.", "Tell me about the history of Athens."),
    ("What is the best way to learn Spanish?", "What is the best way to learn Italian?"),
    ("How do I use async and await in Python?", "How do I use async and await in Rust?"),
    ("What is Amazon's return policy?", "What is Walmart's return policy?"),
    ("How do I create a virtual machine in Azure?", "How do I create a virtual machine in AWS?"),
    ("What are the rules of chess?", "What are the rules of Go?"),
    ("When was Abraham Lincoln born?", "When was George Washington born?"),
    ("How do I parse JSON in Go?", "How do I parse JSON in Swift?"),
    ("What is the tallest building in Dubai?", "What is the tallest building in Shanghai?"),
    ("Explain the Treaty of Versailles.", "Explain the Treaty of Westphalia."),
    ("How do I change my password on Netflix?", "How do I change my password on Spotify?"),
    ("What language is spoken in Brazil?", "What language is spoken in Argentina?"),
    ("How do I write unit tests with pytest?", "How do I write unit tests with unittest?"),
    ("What is the main export of Chile?", "What is the main export of Peru?"),
    (
        "How do I configure Nginx as a reverse proxy?",
        "How do I configure Apache as a reverse proxy?",
    ),
    ("Who painted the Mona Lisa?", "Who painted the Starry Night?"),
    ("What are the symptoms of COVID?", "What are the symptoms of RSV?"),
    ("How do I export data from Salesforce?", "How do I export data from HubSpot?"),
    ("What is the climate of Kenya?", "What is the climate of Nigeria?"),
    ("How do I train a model with PyTorch?", "How do I train a model with TensorFlow?"),
    ("What is Tesla's stock price?", "What is Apple's stock price?"),
    ("How do I use Redis as a cache?", "How do I use Memcached as a cache?"),
    ("What is the best beach in Thailand?", "What is the best beach in Vietnam?"),
    ("Explain the plot of Star Wars.", "Explain the plot of Star Trek."),
    ("How do I reset my Gmail password?", "How do I reset my Outlook password?"),
    ("What is the history of the Ottoman Empire?", "What is the history of the Mongol Empire?"),
    ("How do I deploy to Kubernetes with Helm?", "How do I deploy to Kubernetes with Kustomize?"),
    ("Who founded Apple?", "Who founded Microsoft?"),
    ("What does the Federal Reserve do?", "What does the European Central Bank do?"),
    ("How do I install Node.js on Windows?", "How do I install Node.js on macOS?"),
    ("What are the best restaurants in Chicago?", "What are the best restaurants in Boston?"),
    ("What is Marie Curie known for?", "What is Rosalind Franklin known for?"),
    ("How do I migrate from Angular to React?", "How do I migrate from Vue to React?"),
    ("What is the currency of Switzerland?", "What is the currency of Sweden?"),
]

ORDER = [
    (
        "How do I convert a string to an integer in Java?",
        "How do I convert an integer to a string in Java?",
    ),
    ("Convert Celsius to Fahrenheit.", "Convert Fahrenheit to Celsius."),
    ("How do I migrate from MySQL to PostgreSQL?", "How do I migrate from PostgreSQL to MySQL?"),
    ("Is Python faster than Java?", "Is Java faster than Python?"),
    (
        "Translate this sentence from English to French.",
        "Translate this sentence from French to English.",
    ),
    (
        "How do I convert a list to a tuple in Python?",
        "How do I convert a tuple to a list in Python?",
    ),
    ("How many miles are in a kilometer?", "How many kilometers are in a mile?"),
    ("How do I cast a float to an int in C?", "How do I cast an int to a float in C?"),
    ("Convert dollars to euros.", "Convert euros to dollars."),
    (
        "How do I copy files from my laptop to the server?",
        "How do I copy files from the server to my laptop?",
    ),
    ("Why is a cat better than a dog as a pet?", "Why is a dog better than a cat as a pet?"),
    ("How do I convert JSON to YAML?", "How do I convert YAML to JSON?"),
    ("How do I port my app from iOS to Android?", "How do I port my app from Android to iOS?"),
    (
        "How long is the flight from New York to London?",
        "How long is the flight from London to New York?",
    ),
    (
        "How do I convert bytes to a string in Python?",
        "How do I convert a string to bytes in Python?",
    ),
    ("Is tea healthier than coffee?", "Is coffee healthier than tea?"),
    (
        "How do I change a date to a timestamp in JavaScript?",
        "How do I change a timestamp to a date in JavaScript?",
    ),
    ("Convert kilograms to pounds.", "Convert pounds to kilograms."),
    (
        "How do I move a column from table A to table B?",
        "How do I move a column from table B to table A?",
    ),
    (
        "How do I convert an array to a set in JavaScript?",
        "How do I convert a set to an array in JavaScript?",
    ),
    ("How do I switch from Windows to Linux?", "How do I switch from Linux to Windows?"),
    (
        "Does the moon orbit the earth or the earth orbit the moon?",
        "Does the earth orbit the moon?",
    ),
    ("How do I convert decimal to binary?", "How do I convert binary to decimal?"),
    (
        "How do I transfer money from savings to checking?",
        "How do I transfer money from checking to savings?",
    ),
    ("Why is Rust safer than C++?", "Why is C++ safer than Rust?"),
    ("How do I convert a PNG to a JPG?", "How do I convert a JPG to a PNG?"),
    (
        "How do I upgrade from Python 2 to Python 3?",
        "How do I downgrade from Python 3 to Python 2?",
    ),
    ("Translate hello from Spanish to German.", "Translate hello from German to Spanish."),
    (
        "How do I convert a dataframe to a numpy array?",
        "How do I convert a numpy array to a dataframe?",
    ),
    ("How do I redirect HTTP to HTTPS in Nginx?", "How do I redirect HTTPS to HTTP in Nginx?"),
    ("Is a virus bigger than a bacterium?", "Is a bacterium bigger than a virus?"),
    ("How do I convert hours to minutes?", "How do I convert minutes to hours?"),
    (
        "How do I sync files from Dropbox to Google Drive?",
        "How do I sync files from Google Drive to Dropbox?",
    ),
    ("How do I convert a char to an int in C++?", "How do I convert an int to a char in C++?"),
    ("Is gold heavier than silver?", "Is silver heavier than gold?"),
    ("How do I convert UTC to local time?", "How do I convert local time to UTC?"),
    ("Why do men live shorter than women?", "Why do women live shorter than men?"),
    ("How do I cast a string to a date in SQL?", "How do I cast a date to a string in SQL?"),
    (
        "How do I import data from Excel to SQL Server?",
        "How do I export data from SQL Server to Excel?",
    ),
    ("How do I convert a map to a list in Java?", "How do I convert a list to a map in Java?"),
]

# Hand-written after the first verifier rounds (tuning split): free-form swaps and rewordings.
HAND: list[tuple[str, str, bool, str]] = [
    ("How do I speed up my Wi-Fi?", "How do I slow down my Wi-Fi?", False, "antonym"),
    ("Why does bread go stale?", "Why does bread go moldy?", False, "sibling"),
    ("How do I make my sauce thicker?", "How do I make my sauce thinner?", False, "antonym"),
    (
        "What is the cheapest way to heat a house?",
        "What is the cheapest way to cool a house?",
        False,
        "antonym",
    ),
    ("How do I shorten a URL?", "How do I lengthen a URL?", False, "antonym"),
    (
        "How do I rename a column in pandas?",
        "How do I rename an index in pandas?",
        False,
        "sibling",
    ),
    (
        "How do I delete a remote branch in git?",
        "How do I delete a local branch in git?",
        False,
        "antonym",
    ),
    ("What is the opposite of a noun?", "What is the plural of a noun?", False, "sibling"),
    (
        "How can I keep my bike from rusting?",
        "How can I keep my car from rusting?",
        False,
        "sibling",
    ),
    (
        "How do I write a for loop in Bash?",
        "How do I write a while loop in Bash?",
        False,
        "sibling",
    ),
    ("What are the side effects of coffee?", "What are the side effects of tea?", False, "sibling"),
    ("Why do onions make you cry?", "Why do onions make you sneeze?", False, "sibling"),
    ("How do I indent code in Vim?", "How do I unindent code in Vim?", False, "antonym"),
    ("Why is my cat losing weight?", "Why is my cat gaining weight?", False, "antonym"),
    ("How do I open a jar that is stuck?", "How do I close a jar that is stuck?", False, "antonym"),
    (
        "How do I make friends as an introvert?",
        "How do I make friends as an extrovert?",
        False,
        "antonym",
    ),
    ("How do I make rice softer?", "How do I make rice firmer?", False, "antonym"),
    ("How do I get a refund for a flight?", "How do I get a refund for a hotel?", False, "sibling"),
    ("What wine goes with fish?", "What wine goes with steak?", False, "sibling"),
    (
        "How do I make a spreadsheet read-only?",
        "How do I make a spreadsheet editable?",
        False,
        "antonym",
    ),
    ("How do I add a row in Excel?", "How do I add a column in Excel?", False, "sibling"),
    (
        "What is the formula for the area of a circle?",
        "What is the formula for the circumference of a circle?",
        False,
        "sibling",
    ),
    ("Should I use tabs or spaces?", "Should I use spaces?", False, "order"),
    ("Is coffee good for you?", "Is coffee bad for you?", False, "antonym"),
    ("Why is my internet slow at night?", "Why is my internet fast at night?", False, "antonym"),
    ("How do I grow my hair faster?", "How do I grow my nails faster?", False, "sibling"),
    ("How do I paste without formatting?", "How do I copy without formatting?", False, "sibling"),
    ("What is a synonym for happy?", "What is an antonym for happy?", False, "antonym"),
    ("What is the past tense of run?", "What is the future tense of run?", False, "sibling"),
    ("How do I teach my child to read?", "How do I teach my child to write?", False, "sibling"),
    ("What time does the sun rise today?", "What time does the sun set today?", False, "antonym"),
    ("How do I attach a file in Gmail?", "How do I attach a photo in Gmail?", False, "sibling"),
    (
        "How many grams of sugar are in a teaspoon?",
        "How many grams of salt are in a teaspoon?",
        False,
        "sibling",
    ),
    ("Translate good morning into French.", "Translate good night into French.", False, "antonym"),
    (
        "Write an email declining a job offer.",
        "Write an email accepting a job offer.",
        False,
        "antonym",
    ),
    (
        "Write a function that checks if a number is even.",
        "Write a function that checks if a number is odd.",
        False,
        "antonym",
    ),
    (
        "Write a function that returns the largest element of a list.",
        "Write a function that returns the smallest element of a list.",
        False,
        "antonym",
    ),
    (
        "Is it rude to arrive early to a party?",
        "Is it rude to arrive late to a party?",
        False,
        "antonym",
    ),
    ("Who invented the telephone?", "Who invented the telegraph?", False, "sibling"),
    (
        "How do I pay off student loans faster?",
        "How do I pay off car loans faster?",
        False,
        "sibling",
    ),
    (
        "What is the capital of the state of New York?",
        "What is the largest city in the state of New York?",
        False,
        "topic",
    ),
    ("Can dogs eat grapes?", "Can dogs eat raisins?", False, "sibling"),
    ("Can I freeze cooked rice?", "Can I freeze uncooked rice?", False, "antonym"),
    (
        "My code runs fine locally but fails in CI. Why?",
        "My code fails locally but runs fine in CI. Why?",
        False,
        "order",
    ),
    (
        "I prefer tea to coffee. What should I try?",
        "I prefer coffee to tea. What should I try?",
        False,
        "order",
    ),
    ("How do I get my toddler to sleep?", "How do I get my toddler to eat?", False, "sibling"),
    (
        "What's a good name for a golden retriever?",
        "Suggest a name for a golden retriever.",
        True,
        "imperative",
    ),
    (
        "Could you recommend a good sci-fi novel?",
        "Recommend a good sci-fi novel.",
        True,
        "imperative",
    ),
    (
        "My plant's leaves are turning yellow. Why?",
        "Why are my plant's leaves turning yellow?",
        True,
        "multisentence",
    ),
    (
        "How long should I boil an egg for a runny yolk?",
        "For a runny yolk, how long should I boil an egg?",
        True,
        "paraphrase",
    ),
    (
        "What's the time complexity of binary search?",
        "What is binary search's time complexity?",
        True,
        "paraphrase",
    ),
    (
        "Give me three tips for better sleep.",
        "What are 3 tips for better sleep?",
        True,
        "imperative",
    ),
    (
        "When was the Eiffel Tower built?",
        "In what year was the Eiffel Tower built?",
        True,
        "paraphrase",
    ),
    (
        "What is the 4th planet from the sun?",
        "Which planet is fourth from the sun?",
        True,
        "ordinal",
    ),
    ("How do I exit Vim?", "How can I quit Vim?", True, "synonym"),
    ("How do I undo a commit in git?", "How can I revert a commit in git?", True, "synonym"),
]


GROUPS: dict[str, tuple[list[tuple[str, str]], bool]] = {
    "paraphrase": (PARAPHRASE, True),
    "topic": (TOPIC, False),
    "number": (NUMBER, False),
    "negation": (NEGATION, False),
    "entity": (ENTITY, False),
    "order": (ORDER, False),
}


DATA = Path(__file__).parent / "data"
Pair = tuple[str, str, bool, str]


def labelled(split: str = "tuning") -> list[Pair]:
    """Every pair of a split as ``(a, b, same, group)``.

    ``tuning``: the hand-written pairs above plus the template pairs of ``generated``; the
    guards were developed on these. ``heldout``: ``data/heldout.jsonl``, hand-written before
    the verifier in other frames and vocabulary, never used for tuning (only its totals were
    read). ``heldout2``, ``heldout3``, …: ``data/heldout<N>.jsonl``, each written blind after
    the verifier (see ``data/README.md``). ``all``: every split."""
    if split == "all":
        return [p for s in splits() for p in labelled(s)]
    if split != "tuning":
        path = DATA / f"{split}.jsonl"
        if split not in splits():
            raise ValueError(f"unknown split {split!r} ({', '.join(splits())}, all)")
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        return [(r["a"], r["b"], bool(r["same"]), r["group"]) for r in rows]
    own = [(a, b, same, g) for g, (pairs, same) in GROUPS.items() for a, b in pairs]
    return own + HAND + generated.pairs()


def splits() -> list[str]:
    """``tuning``, then every held-out file of ``data/`` in the order they were written."""
    held = sorted(DATA.glob("heldout*.jsonl"), key=lambda p: (len(p.stem), p.stem))
    return ["tuning", *(p.stem for p in held)]


def swapped(a: str, b: str) -> tuple[str, ...] | None:
    """The words of a one-word swap between two prompts (sorted), else None."""
    wa, wb = re.findall(r"[\w'-]+", a.lower()), re.findall(r"[\w'-]+", b.lower())
    if len(wa) != len(wb):
        return None
    diff = [(x, y) for x, y in zip(wa, wb, strict=True) if x != y]
    return tuple(sorted(diff[0])) if len(diff) == 1 else None


def shared_swaps() -> set[tuple[str, ...]]:
    """Word swaps found in both splits (kept empty so the held-out figure means something)."""

    def swaps(split: str) -> set[tuple[str, ...]]:
        return {s for a, b, _, _ in labelled(split) if (s := swapped(a, b)) is not None}

    return swaps("tuning") & swaps("heldout")

/* Word lists of the friendly name generator, written for this project. */
#include "base/base.h"

const char *const guest__adjectives[] = {
    "Able",    "Agile",    "Amber",    "Ample",  "Azure",  "Bold",     "Brave",
    "Breezy",  "Bright",   "Brisk",    "Calm",   "Candid", "Cheery",   "Clever",
    "Cosmic",  "Crisp",    "Curious",  "Daring", "Dapper", "Eager",    "Early",
    "Easy",    "Electric", "Epic",     "Fair",   "Fancy",  "Fearless", "Fluffy",
    "Frank",   "Fresh",    "Friendly", "Gentle", "Giddy",  "Glad",     "Golden",
    "Grand",   "Happy",    "Hardy",    "Hearty", "Honest", "Humble",   "Jolly",
    "Jovial",  "Keen",     "Kind",     "Lively", "Loyal",  "Lucky",    "Lunar",
    "Merry",   "Mighty",   "Mellow",   "Misty",  "Modest", "Neat",     "Nimble",
    "Noble",   "Peppy",    "Plucky",   "Polite", "Proud",  "Quick",    "Quiet",
    "Radiant", "Rapid",    "Rosy",     "Rustic", "Sage",   "Shiny",    "Silent",
    "Silver",  "Sleek",    "Smart",    "Snappy", "Solar",  "Sparkly",  "Spry",
    "Steady",  "Sturdy",   "Sunny",    "Swift",  "Tidy",   "Trusty",   "Upbeat",
    "Valiant", "Vivid",    "Warm",     "Wise",   "Witty",  "Zany",     "Zesty",
};
const size_t guest__adjective_count = 91;

const char *const guest__nouns[] = {
    "Albatross", "Antelope", "Badger",   "Beaver",  "Bison",   "Bobcat",
    "Buffalo",   "Camel",    "Caribou",  "Cheetah", "Condor",  "Cougar",
    "Coyote",    "Crane",    "Dingo",    "Dolphin", "Eagle",   "Falcon",
    "Ferret",    "Finch",    "Flamingo", "Fox",     "Gazelle", "Gecko",
    "Gibbon",    "Giraffe",  "Heron",    "Hippo",   "Ibis",    "Iguana",
    "Impala",    "Jaguar",   "Kestrel",  "Kiwi",    "Koala",   "Lemur",
    "Leopard",   "Lion",     "Llama",    "Lynx",    "Magpie",  "Manatee",
    "Marmot",    "Meerkat",  "Mole",     "Moose",   "Narwhal", "Newt",
    "Ocelot",    "Octopus",  "Orca",     "Osprey",  "Otter",   "Owl",
    "Panda",     "Panther",  "Parrot",   "Pelican", "Penguin", "Puffin",
    "Puma",      "Quail",    "Rabbit",   "Raccoon", "Raven",   "Robin",
    "Salmon",    "Seal",     "Sparrow",  "Squid",   "Stork",   "Swan",
    "Tapir",     "Tiger",    "Toucan",   "Turtle",  "Walrus",  "Weasel",
    "Whale",     "Wolf",     "Wombat",   "Yak",     "Zebra",
};
const size_t guest__noun_count = 83;

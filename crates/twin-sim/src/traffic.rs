//! Road traffic. [`assign`] is static user-equilibrium assignment (Wardrop's first principle with BPR link costs):
//! given a road network and an origin–destination matrix of car trips, the link flows at which no driver can lower
//! their generalised cost by changing route. [`trips`] makes the car trips of a city without a survey (generation,
//! zones, gravity distribution); [`city`] builds the whole model from the twin's entities.

pub mod assign;
pub mod city;
pub mod counts;
pub mod scenario;
pub mod trips;

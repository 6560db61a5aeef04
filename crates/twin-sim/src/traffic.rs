//! Road traffic. [`assign`] is static user-equilibrium assignment (Wardrop's first principle with BPR link costs):
//! given a road network and an origin–destination matrix of car trips, the link flows at which no driver can lower
//! their generalised cost by changing route. Demand models (trip generation and distribution) will sit beside it.

pub mod assign;
pub mod trips;

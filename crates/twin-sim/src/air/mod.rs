//! Air quality from traffic: emissions per link from flow, speed and a fleet mix ([`emissions`]), and the
//! concentrations they cause in the street and around it ([`dispersion`]: SRM1 street canyons, a Gaussian line source),
//! and both applied to a city's streets and homes under a traffic solution ([`city`]).

pub mod city;
pub mod dispersion;
pub mod emissions;

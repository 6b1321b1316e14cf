// The world map of the region catalogue: Natural Earth's countries (world-atlas, bundled)
// drawn with d3-geo, and one marker per region that has coordinates. A marker says what
// the region is to this registry in attributes any test can read without knowing the
// markup: data-region, data-state (replica | available | unavailable) and, for a replica,
// data-status, data-home and data-routing. Markers are buttons: focusable, activated by
// Enter or Space, each named for what it shows.
import { geoNaturalEarth1, geoPath } from "d3-geo";
import type { FeatureCollection } from "geojson";
import { useMemo } from "preact/hooks";
import { feature, mesh } from "topojson-client";
import type { GeometryCollection, Topology } from "topojson-specification";
import countries from "world-atlas/countries-110m.json";
import type { RegionChoice, Replication } from "./api.ts";

const width = 960;
const height = 500;

export interface MapRegion {
  choice: RegionChoice;
  replica: Replication | undefined;
}

export type MarkerState = "replica" | "available" | "unavailable";

export function stateOf(region: MapRegion): MarkerState {
  if (region.replica) return "replica";
  return region.choice.available ? "available" : "unavailable";
}

/** What a marker says to a screen reader and in its tooltip. */
export function describeRegion(region: MapRegion): string {
  const { choice, replica } = region;
  if (replica) {
    const parts = [`${choice.displayName}: replica, ${replica.status}`];
    if (replica.home) parts.push("home");
    parts.push(replica.regionEndpointEnabled ? "routing on" : "routing off");
    if (replica.statusMessage) parts.push(replica.statusMessage);
    return parts.join(", ");
  }
  if (choice.available) return `${choice.displayName}: available, select to create a replica`;
  return `${choice.displayName}: unavailable, ${choice.reason ?? "no reason given"}`;
}

interface Geography {
  land: string;
  borders: string;
  sphere: string;
  project: (longitude: number, latitude: number) => [number, number] | null;
}

function geography(): Geography {
  const topology = countries as unknown as Topology<{ countries: GeometryCollection }>;
  const land = feature(topology, topology.objects.countries) as unknown as FeatureCollection;
  const projection = geoNaturalEarth1().fitSize([width, height], { type: "Sphere" });
  const path = geoPath(projection);
  return {
    land: path(land) ?? "",
    borders: path(mesh(topology, topology.objects.countries, (a, b) => a !== b)) ?? "",
    sphere: path({ type: "Sphere" }) ?? "",
    project: (longitude, latitude) => projection([longitude, latitude]),
  };
}

export interface WorldMapProps {
  regions: MapRegion[];
  selected: string | undefined;
  onSelect: (region: MapRegion) => void;
}

export function WorldMap(props: WorldMapProps) {
  const geo = useMemo(geography, []);
  return (
    // biome-ignore lint/a11y/useSemanticElements: the map's markers are grouped in its SVG
    <svg
      class="world-map"
      viewBox={`0 0 ${width} ${height}`}
      role="group"
      aria-label="World map of the regions"
    >
      <path class="sphere" d={geo.sphere} />
      <path class="land" d={geo.land} />
      <path class="borders" d={geo.borders} />
      {/* Replicas last, so that they are drawn over a neighbouring region's dot. */}
      {[...props.regions]
        .sort((a, b) => Number(!!a.replica) - Number(!!b.replica))
        .map((region) => {
          const { choice, replica } = region;
          if (choice.latitude === undefined || choice.longitude === undefined) return null;
          const at = geo.project(choice.longitude, choice.latitude);
          if (!at) return null;
          const state = stateOf(region);
          const label = describeRegion(region);
          const activate = () => props.onSelect(region);
          return (
            // biome-ignore lint/a11y/useSemanticElements: an SVG group cannot be a <button>
            <g
              key={choice.name}
              class={`marker ${state} ${props.selected === choice.name ? "selected" : ""}`}
              transform={`translate(${at[0].toFixed(1)} ${at[1].toFixed(1)})`}
              role="button"
              tabindex={0}
              aria-label={label}
              data-region={choice.name}
              data-state={state}
              data-status={replica?.status}
              data-home={replica ? String(replica.home) : undefined}
              data-routing={replica ? (replica.regionEndpointEnabled ? "on" : "off") : undefined}
              onClick={activate}
              onKeyDown={(event) => {
                if (event.key === "Enter" || event.key === " ") {
                  event.preventDefault();
                  activate();
                }
              }}
            >
              <title>{label}</title>
              {state === "replica" ? (
                <>
                  <polygon
                    class={`hexagon status-${(replica?.status ?? "").toLowerCase()}`}
                    points="0,-10 8.7,-5 8.7,5 0,10 -8.7,5 -8.7,-5"
                  />
                  {replica?.home && (
                    <text class="home-mark" y="4" text-anchor="middle">
                      H
                    </text>
                  )}
                  {replica && !replica.regionEndpointEnabled && (
                    <circle class="routing-off" r="13" />
                  )}
                </>
              ) : (
                <circle r={state === "available" ? 6 : 5} />
              )}
            </g>
          );
        })}
    </svg>
  );
}

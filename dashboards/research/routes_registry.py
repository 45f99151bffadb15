"""Campaign management routes: campaigns, kits, participants, home zones, opt-outs, deletions.

Writes need an ``admin`` token (of the campaign, or of all campaigns to
create one); a participant's own token may add home zones and opt-outs,
download their data and delete it.  Kit registration issues each device's
MQTT password once (``qsec.access``) when the server knows its broker's
password file.
"""

from datetime import UTC, datetime
from typing import Annotated, Any

import duckdb
from fastapi import APIRouter, Depends, HTTPException, Path, Query
from fastapi.responses import StreamingResponse

from analysis.export import ExportResult, Selection, SelectionError, log_export, stream_bundle
from analysis.export.bundle import prepare
from analysis.export.writers import FORMATS
from dashboards.research import models as m
from dashboards.research.auth import Caller
from dashboards.research.context import Context, forbid
from ingest import registry as reg
from qsec.access import Credentials

CampaignId = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]
ParticipantPath = Annotated[str, Path(pattern=r"^p-[a-z0-9]{10}$")]
ZIP = {200: {"content": {"application/zip": {}}, "description": "a bundle (zip): data, manifest, licence, checksums"}}


def aware(when: datetime | None) -> datetime | None:
    """A naive UTC time from the store as an aware one."""
    return None if when is None else when.replace(tzinfo=UTC)


def campaign_model(info: reg.CampaignInfo) -> m.Campaign:
    return m.Campaign(campaign=info.campaign, title=info.title[:200], description=info.description,
                      status=info.status, licence=info.licence, public=info.public,  # type: ignore[arg-type]
                      min_participants=info.min_participants, starts=aware(info.starts), ends=aware(info.ends))


def kit_model(kit: reg.Kit) -> m.Kit:
    return m.Kit(kit=kit.kit, campaign=kit.campaign, label=kit.label,
                 devices={d: list(s) for d, s in kit.devices.items()})


def visible(con: duckdb.DuckDBPyConnection, caller: Caller, campaign: str) -> reg.CampaignInfo:
    """The campaign if the caller may see it at all (public, or theirs); 404 otherwise (no existence leak)."""
    info = reg.get_campaign(con, campaign)
    if not (info.public or caller.reads(campaign) or caller.administers(campaign)
            or (caller.role == "participant" and caller.campaign == campaign)):
        raise reg.NotFound(f"no campaign {campaign!r}")
    return info


def add_registry_routes(router: APIRouter, ctx: Context) -> None:
    """Add the campaign-management routes to ``router``."""
    Con = Annotated[duckdb.DuckDBPyConnection, Depends(ctx.con)]
    Who = Annotated[Caller, Depends(ctx.caller)]

    def need_admin(caller: Caller, campaign: str | None) -> None:
        if not caller.administers(campaign):
            raise forbid(caller, "manage this campaign")

    def for_participant(con: duckdb.DuckDBPyConnection, caller: Caller, participant: str) -> str:
        campaign = reg.participant_campaign(con, participant)
        if not caller.acts_for(participant, campaign):
            raise forbid(caller, "act for this participant")
        return campaign

    @router.get("/campaigns", response_model=m.CampaignList, summary="Campaigns the caller may see")
    def list_campaigns(con: Con, caller: Who) -> m.CampaignList:
        infos = [c for c in reg.list_campaigns(con) if c.public or caller.reads(c.campaign)
                 or caller.administers(c.campaign)]
        return m.CampaignList(campaigns=[campaign_model(c) for c in infos])

    @router.post("/campaigns", response_model=m.Campaign, status_code=201, summary="Create a campaign (draft)")
    def create_campaign(body: m.CampaignIn, con: Con, caller: Who) -> m.Campaign:
        need_admin(caller, None)
        info = reg.create_campaign(con, body.campaign, title=body.title, starts=body.starts, ends=body.ends,
                                   licence=body.licence, public=body.public, description=body.description,
                                   min_participants=body.min_participants)
        return campaign_model(info)

    @router.get("/campaigns/{campaign}", response_model=m.Campaign, summary="One campaign")
    def get_campaign(campaign: CampaignId, con: Con, caller: Who) -> m.Campaign:
        return campaign_model(visible(con, caller, campaign))

    @router.post("/campaigns/{campaign}/open", response_model=m.Campaign, summary="Open a campaign for data")
    def open_campaign(campaign: CampaignId, con: Con, caller: Who) -> m.Campaign:
        need_admin(caller, campaign)
        return campaign_model(reg.set_status(con, campaign, "open"))

    @router.post("/campaigns/{campaign}/close", response_model=m.Campaign, summary="Close a campaign")
    def close_campaign(campaign: CampaignId, con: Con, caller: Who) -> m.Campaign:
        need_admin(caller, campaign)
        return campaign_model(reg.set_status(con, campaign, "closed"))

    @router.get("/campaigns/{campaign}/kits", response_model=m.KitList, summary="Kits and their devices")
    def list_kits(campaign: CampaignId, con: Con, caller: Who) -> m.KitList:
        visible(con, caller, campaign)
        return m.KitList(kits=[kit_model(k) for k in reg.list_kits(con, campaign)])

    @router.post("/campaigns/{campaign}/kits", response_model=m.KitRegistered, status_code=201,
                 summary="Register a kit; each device's MQTT password is shown once")
    def register_kit(campaign: CampaignId, body: m.KitIn, con: Con, caller: Who) -> m.KitRegistered:
        need_admin(caller, campaign)
        kit = reg.register_kit(con, campaign, body.kit, body.devices, label=body.label)
        passwords: dict[str, str] = {}
        if ctx.settings.password_file is not None:
            credentials = Credentials(ctx.settings.password_file)
            for device in kit.devices:
                passwords[device] = credentials.issue(device)
                reg.mark_credentials_issued(con, device)
        note = ("passwords are shown once and stored only as hashes; reload the broker to apply them"
                if passwords else "no broker password file configured: issue credentials with `qsec kit register`")
        return m.KitRegistered(kit=kit_model(kit), passwords=passwords, note=note)

    @router.get("/campaigns/{campaign}/participants", response_model=m.ParticipantList,
                summary="Pseudonymous participants and their kits")
    def list_participants(campaign: CampaignId, con: Con, caller: Who) -> m.ParticipantList:
        if not (caller.reads(campaign) or caller.administers(campaign)):
            raise forbid(caller, "list this campaign's participants")
        reg.get_campaign(con, campaign)
        rows = reg.list_participants(con, campaign)
        return m.ParticipantList(participants=[
            m.Participant(participant=r["participant"], created=aware(r["created"]), deleted=aware(r["deleted"]),
                          kits=[k for k in (r["kits"] or "").split(",") if k]) for r in rows])

    @router.post("/campaigns/{campaign}/participants", response_model=m.ParticipantCreated, status_code=201,
                 summary="Add a pseudonymous participant")
    def add_participant(campaign: CampaignId, con: Con, caller: Who) -> m.ParticipantCreated:
        need_admin(caller, campaign)
        return m.ParticipantCreated(participant=reg.add_participant(con, campaign), campaign=campaign)

    @router.post("/participants/{participant}/assignments", response_model=m.Created, status_code=201,
                 summary="Give a kit to a participant from a time on")
    def assign(participant: ParticipantPath, body: m.AssignmentIn, con: Con, caller: Who) -> m.Created:
        need_admin(caller, reg.participant_campaign(con, participant))
        return m.Created(id=reg.assign_kit(con, participant, body.kit, body.starts, body.ends))

    @router.post("/participants/{participant}/home-zones", response_model=m.Created, status_code=201,
                 summary="Declare a place whose surroundings are never published")
    def add_home_zone(participant: ParticipantPath, body: m.HomeZoneIn, con: Con, caller: Who) -> m.Created:
        for_participant(con, caller, participant)
        return m.Created(id=reg.add_home_zone(con, participant, body.latitude, body.longitude, body.radius_m))

    @router.get("/participants/{participant}/opt-outs", response_model=m.OptOutList,
                summary="Ranges the participant does not want published")
    def list_opt_outs(participant: ParticipantPath, con: Con, caller: Who) -> m.OptOutList:
        for_participant(con, caller, participant)
        rows = reg.list_opt_outs(con, participant)
        return m.OptOutList(opt_outs=[m.OptOut(id=r["id"], starts=aware(r["starts"]), ends=aware(r["ends"]),
                                               reason=r["reason"], created=aware(r["created"])) for r in rows])

    @router.post("/participants/{participant}/opt-outs", response_model=m.Created, status_code=201,
                 summary="Mark a trip or a time range as not to be published")
    def add_opt_out(participant: ParticipantPath, body: m.OptOutIn, con: Con, caller: Who) -> m.Created:
        for_participant(con, caller, participant)
        return m.Created(id=reg.add_opt_out(con, participant, body.starts, body.ends, body.reason))

    @router.get("/participants/{participant}/export", response_class=StreamingResponse, responses=ZIP,
                summary="Everything a participant's kits recorded while they carried them (GDPR Art. 20)")
    def export_participant(participant: ParticipantPath, con: Con, caller: Who,
                           format: Annotated[str, Query(pattern="^(" + "|".join(FORMATS) + ")$")] = "csv",
                           ) -> StreamingResponse:
        campaign = for_participant(con, caller, participant)
        ctx.charge(caller, ctx.settings.export_cost)
        selection = Selection(campaign=campaign, participant=participant, positions=True)
        return bundle_response(ctx, caller, selection, format, f"{participant}-{format}.zip")

    @router.delete("/participants/{participant}", response_model=m.Deletion,
                   summary="Delete a participant's data (GDPR Art. 17); the deletion is logged, not the data")
    def delete_participant(participant: ParticipantPath, con: Con, caller: Who) -> m.Deletion:
        for_participant(con, caller, participant)
        return deletion_model(reg.delete_participant(con, participant))

    @router.get("/campaigns/{campaign}/deletions", response_model=m.DeletionList, summary="The deletion log")
    def list_deletions(campaign: CampaignId, con: Con, caller: Who) -> m.DeletionList:
        need_admin(caller, campaign)
        return m.DeletionList(deletions=[deletion_model(d) for d in reg.deletions(con, campaign)])


def deletion_model(d: reg.Deletion) -> m.Deletion:
    return m.Deletion(participant=d.participant, campaign=d.campaign, requested=aware(d.requested),
                      done=aware(d.done), what=d.what, readings=d.readings, registry_rows=d.registry_rows)


def bundle_response(ctx: Context, caller: Caller, selection: Selection, fmt: str, filename: str) -> StreamingResponse:
    """Stream a bundle on its own cursor (the request's is closed first) and log it when complete."""

    def produce() -> Any:
        with ctx.cursor() as con:
            result = ExportResult()
            yield from stream_bundle(con, selection, fmt, result=result)
            log_export(con, route="api", fmt=fmt, selection=selection, result=result, token_id=caller.token_id,
                       address=caller.address)

    try:  # fail before the 200 for a selection that cannot be answered
        prepare(selection, fmt)
    except SelectionError as error:
        raise HTTPException(422, str(error)) from error
    return StreamingResponse(produce(), media_type="application/zip",
                             headers={"Content-Disposition": f'attachment; filename="{filename}"'})
